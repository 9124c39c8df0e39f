// Package retention drops whole days of data once they have left the
// retention window, and watches the disk the data lives on.
//
// The policy is the pure function Expired, kept apart from the act of
// deleting (as Prometheus' tsdb does): the Janitor asks the stores which
// days they hold, asks Expired which of them may go, and has each store drop
// them. The stores own the mechanics that make a drop crash-safe (the index
// writes a drop record to its journal, renames the shard, then removes it;
// leftovers are removed at open).
package retention

import (
	"slices"
	"time"
)

const day = 24 * time.Hour

// Cutoff returns the UTC midnight before which every day has expired: a day
// is expired when all of it is older than now-retention. The day holding
// now-retention is kept whole, so every event stays searchable for at least
// the retention (ISO 27001 asks for 90 days) and at most a day longer.
func Cutoff(retention time.Duration, now time.Time) time.Time {
	return now.UTC().Add(-retention).Truncate(day)
}

// Expired returns the days of days (UTC midnights, any order) that lie
// wholly before now-retention, oldest first. A non-positive retention
// expires nothing: deleting evidence must never follow from a zero value.
func Expired(days []time.Time, retention time.Duration, now time.Time) []time.Time {
	if retention <= 0 {
		return nil
	}
	cut := Cutoff(retention, now)
	var out []time.Time
	for _, d := range days {
		if d.UTC().Truncate(day).Before(cut) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}
