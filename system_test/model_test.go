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
			op(1, opCAS, 7, 0, kvOutput{OK: true}, 0, 10),
			op(2, opCAS, 8, 0, kvOutput{OK: true}, 20, 30),
		}, porcupine.Illegal},
		{"a CAS that failed although the value matched", []porcupine.Operation{
			op(1, opCAS, 7, 0, kvOutput{OK: false}, 0, 10),
		}, porcupine.Illegal},
	} {
		if got := porcupine.CheckOperations(kvModel.ToModel(), tc.ops); got != (tc.want == porcupine.Ok) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
