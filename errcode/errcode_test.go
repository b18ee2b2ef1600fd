package errcode

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorsMatchByCode(t *testing.T) {
	wrapped := fmt.Errorf("forwarding: %w", New(NotLeader, "not leader: leadership moved to n2"))
	if !errors.Is(wrapped, ErrNotLeader) {
		t.Error("an error with the NotLeader code does not match ErrNotLeader")
	}
	if errors.Is(wrapped, ErrNoLeader) {
		t.Error("NotLeader matches NoLeader")
	}
	if errors.Is(New(Unknown, "x"), New(Unknown, "x")) {
		t.Error("errors without a code match each other")
	}
	if Of(wrapped) != NotLeader || Of(errors.New("plain")) != Unknown {
		t.Error("Of")
	}
	back := FromWire(WireCode(wrapped), wrapped.Error())
	if !errors.Is(back, ErrNotLeader) || back.Error() != wrapped.Error() {
		t.Errorf("through the wire: %v", back)
	}
}

// Every code has the status the API answers with; 500 is kept for the disk and for errors without a code.
func TestEveryCodeHasAStatus(t *testing.T) {
	want := map[Code]int{
		NotLeader: 503, NoLeader: 503, Unauthorized: 401, Fault: 500, Timeout: 503, OutcomeUnknown: 503,
		LeaderLost: 503, Stopped: 503, NotOpen: 503, UnknownNode: 404, TooLarge: 413, StaleRead: 503,
		NotSingleNode: 503, NothingNew: 500, BadRequest: 400, Conflict: 409, Unknown: 500,
	}
	for c := Code(0); c <= Conflict; c++ {
		w, ok := want[c]
		if !ok {
			t.Errorf("code %d has no expected status in this test", c)
			continue
		}
		if s := HTTPStatus(c); s != w {
			t.Errorf("code %d: status %d, want %d", c, s, w)
		}
	}
}
