package gateway

// SubmissionPage is one page of a list of submissions, newest first.
// Older continues with the next older entries, "" when there are none;
// Newer goes back to the newer ones, "" on the first page. Cursors are
// opaque to callers (the store makes and reads them).
type SubmissionPage struct {
	Submissions  []*Submission
	Older, Newer string
}
