package store

// SetCommitFault makes every commit of s go through f, which is handed
// the real commit: a test may commit and then report the connection lost
// (the answer lost on its way back), or report it lost without committing.
func SetCommitFault(s *Store, f func(commit func() error) error) { s.commitFault = f }

// SQLiteTables is the schema a new SQLite store is made with.
var SQLiteTables = sqliteTables
