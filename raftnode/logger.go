package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to etcd raft's Logger, at its own level (-raft-log-level).
type raftLogger struct {
	log *slog.Logger
}

func (l *raftLogger) emit(level slog.Level, msg string) {
	l.log.Log(context.Background(), level, msg, "component", "raft")
}

func (l *raftLogger) Debug(v ...any) { l.emit(slog.LevelDebug, fmt.Sprint(v...)) }
func (l *raftLogger) Debugf(format string, v ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, v...))
}
func (l *raftLogger) Info(v ...any) { l.emit(slog.LevelInfo, fmt.Sprint(v...)) }
func (l *raftLogger) Infof(format string, v ...any) {
	l.emit(slog.LevelInfo, fmt.Sprintf(format, v...))
}
func (l *raftLogger) Warning(v ...any) { l.emit(slog.LevelWarn, fmt.Sprint(v...)) }
func (l *raftLogger) Warningf(format string, v ...any) {
	l.emit(slog.LevelWarn, fmt.Sprintf(format, v...))
}
func (l *raftLogger) Error(v ...any) { l.emit(slog.LevelError, fmt.Sprint(v...)) }
func (l *raftLogger) Errorf(format string, v ...any) {
	l.emit(slog.LevelError, fmt.Sprintf(format, v...))
}

// Fatal and Panic are raft's reactions to a broken invariant; raft expects them not to return.
func (l *raftLogger) Fatal(v ...any) { l.fatal(fmt.Sprint(v...)) }
func (l *raftLogger) Fatalf(format string, v ...any) {
	l.fatal(fmt.Sprintf(format, v...))
}
func (l *raftLogger) Panic(v ...any)                 { l.panic(fmt.Sprint(v...)) }
func (l *raftLogger) Panicf(format string, v ...any) { l.panic(fmt.Sprintf(format, v...)) }

func (l *raftLogger) fatal(msg string) {
	l.log.Error(msg, "component", "raft")
	os.Exit(1)
}

func (l *raftLogger) panic(msg string) {
	l.log.Error(msg, "component", "raft")
	panic(msg)
}
