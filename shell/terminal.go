package shell

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/peterh/liner"
)

// TerminalReader reads lines from a terminal with line editing and a history kept in a file.
type TerminalReader struct {
	l           *liner.State
	historyPath string
}

// NewTerminalReader takes over the terminal; Close gives it back and saves the history.
func NewTerminalReader(historyPath string) *TerminalReader {
	l := liner.NewLiner()
	l.SetCtrlCAborts(true)
	l.SetMultiLineMode(true)
	t := &TerminalReader{l: l, historyPath: historyPath}
	if historyPath != "" {
		if f, err := os.Open(historyPath); err == nil {
			l.ReadHistory(f)
			f.Close()
		}
	}
	return t
}

// ReadLine implements LineReader.
func (t *TerminalReader) ReadLine(prompt string) (string, error) {
	line, err := t.l.Prompt(prompt)
	if errors.Is(err, liner.ErrPromptAborted) {
		return "", ErrInterrupted
	}
	return line, err
}

// AddHistory records one whole input.
func (t *TerminalReader) AddHistory(entry string) { t.l.AppendHistory(entry) }

// Close restores the terminal and writes the history (readable by the owner only: it holds SQL).
func (t *TerminalReader) Close() error {
	var err error
	if t.historyPath != "" {
		var f *os.File
		if f, err = os.OpenFile(t.historyPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
			_, err = t.l.WriteHistory(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			err = fmt.Errorf("save history to %s: %w", t.historyPath, err)
		}
	}
	if cerr := t.l.Close(); err == nil {
		err = cerr
	}
	return err
}

var _ io.Closer = (*TerminalReader)(nil)
