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

func TestEveryCodeHasAStatus(t *testing.T) {
	for c := Code(1); c <= BadRequest; c++ {
		if s := HTTPStatus(c); s < 400 {
			t.Errorf("code %d: status %d", c, s)
		}
	}
}
