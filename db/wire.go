package db

import (
	"fmt"

	"github.com/raftlite/raftlite/command"
)

// ResultsToWire converts results to their protobuf form, for answers that travel between nodes.
func ResultsToWire(rs []Result) []*command.Result {
	out := make([]*command.Result, len(rs))
	for i, r := range rs {
		switch {
		case r.Exec != nil:
			e := r.Exec
			out[i] = &command.Result{Result: &command.Result_Exec{Exec: &command.ExecResult{
				LastInsertId: e.LastInsertID, RowsAffected: e.RowsAffected, Error: e.Error, Time: e.Time}}}
		case r.Rows != nil:
			out[i] = &command.Result{Result: &command.Result_Rows{Rows: rowsToWire(r.Rows)}}
		default:
			out[i] = &command.Result{Result: &command.Result_Error{Error: r.Error}}
		}
	}
	return out
}

func rowsToWire(r *Rows) *command.Rows {
	w := &command.Rows{Columns: r.Columns, Types: r.Types, Error: r.Error, Time: r.Time}
	w.Values = make([]*command.Row, len(r.Values))
	for i, row := range r.Values {
		vals := make([]*command.Value, len(row))
		for j, v := range row {
			vals[j] = valueToWire(v)
		}
		w.Values[i] = &command.Row{Values: vals}
	}
	return w
}

func valueToWire(v any) *command.Value {
	switch x := v.(type) {
	case int64:
		return &command.Value{Value: &command.Value_I{I: x}}
	case float64:
		return &command.Value{Value: &command.Value_D{D: x}}
	case bool:
		return &command.Value{Value: &command.Value_B{B: x}}
	case string:
		return &command.Value{Value: &command.Value_S{S: x}}
	case []byte:
		return &command.Value{Value: &command.Value_Y{Y: x}}
	case nil:
		return &command.Value{}
	default:
		// Values come only from rowValue, which produces the kinds above.
		return &command.Value{Value: &command.Value_S{S: fmt.Sprint(x)}}
	}
}

// ResultsFromWire converts protobuf results back to Results.
func ResultsFromWire(ws []*command.Result) []Result {
	out := make([]Result, len(ws))
	for i, w := range ws {
		switch r := w.GetResult().(type) {
		case *command.Result_Exec:
			out[i].Exec = &ExecResult{LastInsertID: r.Exec.GetLastInsertId(), RowsAffected: r.Exec.GetRowsAffected(),
				Error: r.Exec.GetError(), Time: r.Exec.GetTime()}
		case *command.Result_Rows:
			out[i].Rows = rowsFromWire(r.Rows)
		case *command.Result_Error:
			out[i].Error = r.Error
		default:
			out[i].Error = "empty result from remote node"
		}
	}
	return out
}

func rowsFromWire(w *command.Rows) *Rows {
	r := &Rows{Columns: w.GetColumns(), Types: w.GetTypes(), Error: w.GetError(), Time: w.GetTime()}
	if len(w.GetValues()) > 0 {
		r.Values = make([][]any, len(w.GetValues()))
	}
	for i, row := range w.GetValues() {
		vals := make([]any, len(row.GetValues()))
		for j, v := range row.GetValues() {
			switch x := v.GetValue().(type) {
			case *command.Value_I:
				vals[j] = x.I
			case *command.Value_D:
				vals[j] = x.D
			case *command.Value_B:
				vals[j] = x.B
			case *command.Value_S:
				vals[j] = x.S
			case *command.Value_Y:
				vals[j] = x.Y
			}
		}
		r.Values[i] = vals
	}
	return r
}
