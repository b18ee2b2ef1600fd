package sqlscan

// Kind is what a statement does, judged by its leading keywords.
type Kind uint8

const (
	Other       Kind = iota // anything else, including text that is not valid SQL
	Select                  // SELECT
	Insert                  // INSERT
	Update                  // UPDATE
	Delete                  // DELETE
	Replace                 // REPLACE
	Create                  // CREATE
	Drop                    // DROP
	Alter                   // ALTER
	PragmaStmt              // PRAGMA (named so because the function Pragma takes the plain name)
	Begin                   // BEGIN
	Commit                  // COMMIT or END
	Rollback                // ROLLBACK [TRANSACTION] without TO
	RollbackTo              // ROLLBACK [TRANSACTION] TO [SAVEPOINT] name
	Savepoint               // SAVEPOINT
	Release                 // RELEASE
	Vacuum                  // VACUUM
	Attach                  // ATTACH
	Detach                  // DETACH
	AnalyzeStmt             // ANALYZE (named so because the function Analyze takes the plain name)
	Reindex                 // REINDEX
	Values                  // VALUES
	Explain                 // EXPLAIN [QUERY PLAN] …
)

var kindNames = [...]string{
	Other: "Other", Select: "Select", Insert: "Insert", Update: "Update", Delete: "Delete",
	Replace: "Replace", Create: "Create", Drop: "Drop", Alter: "Alter", PragmaStmt: "Pragma",
	Begin: "Begin", Commit: "Commit", Rollback: "Rollback", RollbackTo: "RollbackTo",
	Savepoint: "Savepoint", Release: "Release", Vacuum: "Vacuum", Attach: "Attach", Detach: "Detach",
	AnalyzeStmt: "Analyze", Reindex: "Reindex", Values: "Values", Explain: "Explain",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// leadingKind maps a statement's first keyword to its kind. WITH and ROLLBACK need more context and are
// resolved by the caller; with reports the former.
func leadingKind(word string) (k Kind, with bool) {
	switch len(word) {
	case 3:
		if equalFoldUpper(word, "END") {
			return Commit, false
		}
	case 4:
		switch {
		case equalFoldUpper(word, "DROP"):
			return Drop, false
		case equalFoldUpper(word, "WITH"):
			return Other, true
		}
	case 5:
		switch {
		case equalFoldUpper(word, "ALTER"):
			return Alter, false
		case equalFoldUpper(word, "BEGIN"):
			return Begin, false
		}
	case 6:
		switch {
		case equalFoldUpper(word, "SELECT"):
			return Select, false
		case equalFoldUpper(word, "INSERT"):
			return Insert, false
		case equalFoldUpper(word, "UPDATE"):
			return Update, false
		case equalFoldUpper(word, "DELETE"):
			return Delete, false
		case equalFoldUpper(word, "CREATE"):
			return Create, false
		case equalFoldUpper(word, "PRAGMA"):
			return PragmaStmt, false
		case equalFoldUpper(word, "COMMIT"):
			return Commit, false
		case equalFoldUpper(word, "VACUUM"):
			return Vacuum, false
		case equalFoldUpper(word, "ATTACH"):
			return Attach, false
		case equalFoldUpper(word, "DETACH"):
			return Detach, false
		case equalFoldUpper(word, "VALUES"):
			return Values, false
		}
	case 7:
		switch {
		case equalFoldUpper(word, "REPLACE"):
			return Replace, false
		case equalFoldUpper(word, "RELEASE"):
			return Release, false
		case equalFoldUpper(word, "ANALYZE"):
			return AnalyzeStmt, false
		case equalFoldUpper(word, "REINDEX"):
			return Reindex, false
		case equalFoldUpper(word, "EXPLAIN"):
			return Explain, false
		}
	case 8:
		if equalFoldUpper(word, "ROLLBACK") {
			return Rollback, false
		}
	case 9:
		if equalFoldUpper(word, "SAVEPOINT") {
			return Savepoint, false
		}
	}
	return Other, false
}
