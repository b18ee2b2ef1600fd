package sqlscan

// Stmt is one statement of a multi-statement string: Text == src[Start:End], running from its first to its
// last significant token, so leading and trailing whitespace and comments and the terminating ';' are not
// part of it (a trailing "-- comment" would otherwise swallow anything appended to Text).
type Stmt struct {
	Text       string
	Start, End int
}

// Token classes and states of the sqlite3_complete() state machine (see complete.c). Only the classes
// matter: the machine exists to find the end of CREATE TRIGGER, whose body contains semicolons.
const (
	tkSemi = iota
	tkOther
	tkExplain
	tkCreate
	tkTemp
	tkTrigger
	tkEnd
)

const (
	stStart   = iota // between statements
	stNormal         // inside an ordinary statement
	stExplain        // after EXPLAIN (and anything else before a possible CREATE)
	stCreate         // after CREATE [TEMP|TEMPORARY]
	stTrigger        // inside a trigger definition: semicolons do not end it
	stSemi           // trigger: after a ';'
	stEnd            // trigger: after "; END"
)

// transitions[state][token]; whitespace and comments never change the state.
var transitions = [7][7]uint8{
	//             Semi     Other     Explain    Create    Temp      Trigger    End
	stStart:   {stStart, stNormal, stExplain, stCreate, stNormal, stNormal, stNormal},
	stNormal:  {stStart, stNormal, stNormal, stNormal, stNormal, stNormal, stNormal},
	stExplain: {stStart, stExplain, stNormal, stCreate, stNormal, stNormal, stNormal},
	stCreate:  {stStart, stNormal, stNormal, stNormal, stCreate, stTrigger, stNormal},
	stTrigger: {stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
	stSemi:    {stSemi, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stEnd},
	stEnd:     {stStart, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger, stTrigger},
}

// Split returns the statements of src in order, following sqlite3_complete() semantics: a ';' ends a
// statement, except inside CREATE [TEMP|TEMPORARY] TRIGGER (also after EXPLAIN), which ends only at
// "; END ;" with whitespace or comments allowed in between. Statements that are only whitespace and comments
// are dropped. It makes one pass and allocates nothing but the result.
func Split(src string) []Stmt {
	var out []Stmt
	state := uint8(stStart)
	start, end := -1, -1 // span of the current statement's significant tokens; start < 0: none yet
	for i := 0; i < len(src); {
		kind, next := lex(src, i)
		switch kind {
		case Space, Comment:
		case Semicolon:
			state = transitions[state][tkSemi]
			if state == stStart {
				if start >= 0 {
					out = append(out, Stmt{Text: src[start:end], Start: start, End: end})
				}
				start = -1
			} else {
				end = next // a ';' inside a trigger body belongs to the statement
			}
		default:
			state = transitions[state][completeClass(src[i:next], kind)]
			if start < 0 {
				start = i
			}
			end = next
		}
		i = next
	}
	if start >= 0 {
		out = append(out, Stmt{Text: src[start:end], Start: start, End: end})
	}
	return out
}

// completeClass maps a significant, non-';' token to its class in the state machine.
func completeClass(text string, kind TokenKind) int {
	if kind != Ident {
		return tkOther
	}
	switch len(text) {
	case 3:
		if equalFoldUpper(text, "END") {
			return tkEnd
		}
	case 4:
		if equalFoldUpper(text, "TEMP") {
			return tkTemp
		}
	case 6:
		if equalFoldUpper(text, "CREATE") {
			return tkCreate
		}
	case 7:
		if equalFoldUpper(text, "EXPLAIN") {
			return tkExplain
		}
		if equalFoldUpper(text, "TRIGGER") {
			return tkTrigger
		}
	case 9:
		if equalFoldUpper(text, "TEMPORARY") {
			return tkTemp
		}
	}
	return tkOther
}
