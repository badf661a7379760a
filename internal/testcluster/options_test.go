package testcluster

import (
	"strings"
	"testing"
)

// TestStartSaysWhatIsMissing: a component without its binary is an error
// naming the command that builds it, before anything starts.
func TestStartSaysWhatIsMissing(t *testing.T) {
	t.Setenv(ControllerManagerEnv, "")
	t.Setenv(KwokStagesEnv, "")
	_, err := Start(Options{ControllerManager: true, Nodes: KindNodes()})
	if err == nil {
		t.Fatal("started without kube-controller-manager or kwok's stages")
	}
	for _, want := range []string{
		`KUBE_CONTROLLER_MANAGER_BIN="$(hack/tools.sh path kube-controller-manager)"`,
		`KWOK_STAGE_DIRS="$(hack/tools.sh kwok-stages | paste -sd: -)"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %s:\n%v", want, err)
		}
	}
}

// TestRolloutsNeedTheirCRDs: the Rollouts controller without its CRDs would
// only log errors; Start refuses it and stops what it started.
func TestRolloutsNeedTheirCRDs(t *testing.T) {
	t.Parallel()
	_, err := Start(Options{Rollouts: true})
	if err == nil || !strings.Contains(err.Error(), "needs the Argo Rollouts CRDs") {
		t.Fatalf("Start with Rollouts and no CRDs: %v", err)
	}
}
