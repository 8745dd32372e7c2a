package plugin_test

import (
	"net/http"
	"testing"

	"github.com/sspr-go/sspr/plugin/plugintest"
)

// TestStepUpCallbackAuditIsCapped: opening the step-up callback without a
// step-up journey records a "stepup.oidc" event, but one client address
// cannot fill the audit trail: past Limits.VerifiesPerIP (60 per 10
// minutes by default) the refusals are not recorded.
func TestStepUpCallbackAuditIsCapped(t *testing.T) {
	e := newOIDCEnv(t)
	b := plugintest.NewBrowser(t)
	for range 75 {
		if res := b.Get(e.h.base + "/stepup/callback?code=x&state=y"); res.Status != http.StatusBadRequest {
			t.Fatalf("callback without a journey: status %d", res.Status)
		}
	}
	if n := len(e.h.audit("stepup.oidc")); n != 60 {
		t.Fatalf("%d stepup.oidc events for 75 refusals from one address, want 60", n)
	}
}
