package plugin

import "time"

// SetWallClock makes p time its directory calls in commitPassword on now
// instead of time.Now, so that a test can play a directory that took most
// of the completion hold. It must be called before p serves a request.
func SetWallClock(p *Plugin, now func() time.Time) { p.wallNow = now }
