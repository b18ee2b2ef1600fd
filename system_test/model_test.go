package system_test

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The register model must reject what a broken database would produce, and accept what a correct one may.
func TestRegisterModel(t *testing.T) {
	op := func(client, op int, value, old int64, out kvOutput, call, ret int64) porcupine.Operation {
		if out.Unknown {
			ret = math.MaxInt64
		}
		return porcupine.Operation{ClientId: client, Input: kvInput{Op: op, Key: 1, Value: value, Old: old}, Output: out, Call: call, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"stale read after an acknowledged write", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{}, 0, 10),
			op(2, opRead, 0, 0, kvOutput{Value: 0}, 20, 30),
		}, porcupine.Illegal},
		{"read during the write may see either", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{}, 0, 10),
			op(2, opRead, 0, 0, kvOutput{Value: 0}, 5, 30),
			op(3, opRead, 0, 0, kvOutput{Value: 5}, 6, 30),
		}, porcupine.Ok},
		{"a failed write may have happened later", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{Unknown: true}, 0, 0),
			op(2, opRead, 0, 0, kvOutput{Value: 0}, 20, 30),
			op(3, opRead, 0, 0, kvOutput{Value: 5}, 40, 50),
		}, porcupine.Ok},
		{"a value can not come back", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{}, 0, 10),
			op(2, opRead, 0, 0, kvOutput{Value: 5}, 20, 30),
			op(3, opRead, 0, 0, kvOutput{Value: 0}, 40, 50),
		}, porcupine.Illegal},
		{"two successful CAS from the same value", []porcupine.Operation{
			op(1, opCAS, 7, 0, kvOutput{OK: true, Value: 7}, 0, 10),
			op(2, opCAS, 8, 0, kvOutput{OK: true, Value: 8}, 20, 30),
		}, porcupine.Illegal},
		{"a CAS that failed although the value matched", []porcupine.Operation{
			op(1, opCAS, 7, 0, kvOutput{OK: false, Value: 0}, 0, 10),
		}, porcupine.Illegal},
		{"a failed CAS reports what it saw", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{}, 0, 10),
			op(2, opCAS, 7, 3, kvOutput{OK: false, Value: 5}, 20, 30),
		}, porcupine.Ok},
		{"a failed CAS that saw a stale value", []porcupine.Operation{
			op(1, opWrite, 5, 0, kvOutput{}, 0, 10),
			op(2, opCAS, 7, 3, kvOutput{OK: false, Value: 0}, 20, 30),
		}, porcupine.Illegal},
	} {
		if got := porcupine.CheckOperations(kvModel.ToModel(), tc.ops); got != (tc.want == porcupine.Ok) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// pruneUnknown leaves out unknown writes nobody observed and bounds those somebody did, and a history
// stays linearizable (or not) through it.
func TestPruneUnknown(t *testing.T) {
	read := func(v int64, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 9, Input: kvInput{Op: opRead, Key: 1}, Output: kvOutput{Value: v}, Call: call, Return: ret}
	}
	unknownWrite := func(client int, v int64, call int64) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: kvInput{Op: opWrite, Key: 1, Value: v}, Output: kvOutput{Unknown: true}, Call: call, Return: math.MaxInt64}
	}
	ops := []porcupine.Operation{
		unknownWrite(1, 10, 0),  // never seen
		unknownWrite(2, 20, 5),  // seen by the read returning at 40
		unknownWrite(3, 30, 50), // seen by a successful CAS
		read(20, 30, 40),
		{ClientId: 4, Input: kvInput{Op: opCAS, Key: 1, Old: 30, Value: 31}, Output: kvOutput{OK: true, Value: 31}, Call: 60, Return: 70},
		read(31, 80, 90),
	}
	got := pruneUnknown(ops)
	if len(got) != 5 {
		t.Fatalf("kept %d operations, want 5: %+v", len(got), got)
	}
	for _, op := range got {
		switch op.Input.(kvInput).Value {
		case 10:
			t.Error("the write nobody saw was kept")
		case 20:
			if op.Return != 40 {
				t.Errorf("write of 20 returns at %d, want 40 (when its value was first read)", op.Return)
			}
		case 30:
			if op.Return != 70 {
				t.Errorf("write of 30 returns at %d, want 70 (when a CAS expecting it returned)", op.Return)
			}
		}
	}
	if !porcupine.CheckOperations(kvModel.ToModel(), got) || !porcupine.CheckOperations(kvModel.ToModel(), ops) {
		t.Error("a linearizable history is not, before or after pruning")
	}
	// A failed CAS that saw an unknown write's value keeps that write.
	sawByFailedCAS := []porcupine.Operation{
		unknownWrite(5, 40, 0),
		{ClientId: 6, Input: kvInput{Op: opCAS, Key: 1, Old: 1, Value: 41}, Output: kvOutput{Value: 40}, Call: 10, Return: 20},
	}
	if got := pruneUnknown(sawByFailedCAS); len(got) != 2 || got[0].Return != 20 {
		t.Errorf("a write seen by a failed CAS: %+v", got)
	}
	// A value read before its write was even sent stays illegal after pruning.
	bad := []porcupine.Operation{read(20, 0, 1), unknownWrite(2, 20, 5)}
	if porcupine.CheckOperations(kvModel.ToModel(), pruneUnknown(bad)) {
		t.Error("a read of a value written only later passed after pruning")
	}
}
