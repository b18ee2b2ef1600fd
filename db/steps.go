package db

/*
#include <stdint.h>
#include <stdlib.h>

typedef struct sqlite3 sqlite3;
extern void sqlite3_progress_handler(sqlite3*, int, int(*)(void*), void*);

// A step budget counts down once per STEP_GRAIN virtual machine instructions of the connection; SQLite
// interrupts the running statement when the handler returns non-zero.
#define STEP_GRAIN 1000
typedef struct { int64_t left; int paused; } step_budget;

static int step_budget_tick(void *p) {
	step_budget *b = (step_budget*)p;
	if (b->paused) return 0;
	b->left--;
	return b->left < 0;
}

static step_budget *step_budget_install(void *db) {
	step_budget *b = calloc(1, sizeof(step_budget));
	if (b == 0) return 0;
	b->left = INT64_MAX;
	b->paused = 1;
	sqlite3_progress_handler((sqlite3*)db, STEP_GRAIN, step_budget_tick, b);
	return b;
}

static void step_budget_remove(void *db, step_budget *b) {
	sqlite3_progress_handler((sqlite3*)db, 0, 0, 0);
	free(b);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	sqlite3 "github.com/mattn/go-sqlite3"

	"github.com/raftlite/raftlite/command"
)

// DefaultApplyStepLimit bounds the SQLite virtual machine instructions one request may execute when it
// is applied from the log, unless its entry says otherwise (Env.StepLimit): about three minutes of work on
// this project's machines. Every replica counts the same instructions for the same request, so every
// replica stops it at the same point, with the same result: a write that would never end (INSERT ...
// SELECT from an endless recursive query) fails instead of stopping the log on every node for good, since
// a restarted node would run it again.
const DefaultApplyStepLimit int64 = 10_000_000_000

// applyStepLimit is the limit of entries that carry none (written before entries carried one); tests
// lower it.
var applyStepLimit = DefaultApplyStepLimit

// stepLimit is the instruction budget of a request applied with env.
func stepLimit(env Env) int64 {
	if env.StepLimit > 0 {
		return env.StepLimit
	}
	return applyStepLimit
}

// stepLimitError is the result of a statement stopped after limit instructions.
func stepLimitError(limit int64) string {
	return fmt.Sprintf("write stopped: the request ran more than %d SQLite steps, which every node would "+
		"have to run too; split it into smaller writes (the leader's -apply-step-limit sets the bound)", limit)
}

// stepLimitResult is the result of a statement stopped by the step limit, or not run because an earlier
// statement of its request was.
func stepLimitResult(mode command.Mode, limit int64) Result {
	if mode == command.Mode_MODE_QUERY {
		return Result{Rows: &Rows{Error: stepLimitError(limit)}}
	}
	return Result{Exec: &ExecResult{Error: stepLimitError(limit)}}
}

func (r Result) stoppedBySteps(limit int64) bool {
	if !r.failed() {
		return false
	}
	msg := stepLimitError(limit)
	return (r.Exec != nil && r.Exec.Error == msg) || (r.Rows != nil && r.Rows.Error == msg)
}

// stepBudget limits the work of the requests the writer applies.
type stepBudget struct {
	db  unsafe.Pointer
	b   *C.step_budget
	max int64 // the limit of the request being applied
}

func installStepBudget(db unsafe.Pointer) (*stepBudget, error) {
	b := C.step_budget_install(db)
	if b == nil {
		return nil, errors.New("install step budget: out of memory")
	}
	return &stepBudget{db: db, b: b}, nil
}

// limit allows the user statements that follow n instructions in all (rounded to the handler's grain).
func (s *stepBudget) limit(n int64) {
	s.max = n
	s.b.left = C.int64_t(n / C.STEP_GRAIN)
	s.b.paused = 1
}

// lift removes the limit (for the writer's own statements).
func (s *stepBudget) lift() {
	s.b.left = math.MaxInt64
	s.b.paused = 1
}

// count turns counting on while a user's statement runs, and off again. Only those steps count, so that
// nothing that depends on the connection's history can: SQL SQLite runs for itself while preparing a
// statement (loading the schema, which the writer does when it opens), or the writer's own statements.
func (s *stepBudget) count(on bool) {
	if on {
		s.b.paused = 0
	} else {
		s.b.paused = 1
	}
}

// stopped reports whether err is SQLite's interruption by the budget running out.
func (s *stepBudget) stopped(err error) bool {
	var se sqlite3.Error
	return s.b.left < 0 && errors.As(err, &se) && se.Code == sqlite3.ErrInterrupt
}

func (s *stepBudget) remove() {
	if s.b != nil {
		C.step_budget_remove(s.db, s.b)
		s.b = nil
	}
}
