package telemetry

import "testing"

func TestResponseFlagsString(t *testing.T) {
	tests := []struct {
		name  string
		flags ResponseFlags
		want  string
	}{
		{"none", 0, "-"},
		{"NR", NoRouteFound, "NR"},
		{"UO", UpstreamOverflow, "UO"},
		{"UH", NoHealthyUpstream, "UH"},
		{"UF", UpstreamConnectionFailure, "UF"},
		{"UT", UpstreamRequestTimeout, "UT"},
		{"DI", DelayInjected, "DI"},
		{"FI", FaultInjected, "FI"},
		{"URX", UpstreamRetryLimitExceeded, "URX"},
		{"NC", NoClusterFound, "NC"},
		{"UPE", UpstreamProtocolError, "UPE"},
		{"DC", DownstreamConnectionTermination, "DC"},
		{"LH", FailedLocalHealthCheck, "LH"},
		{"DR", DownstreamRemoteReset, "DR"},
		{"DI and FI", FaultInjected | DelayInjected, "DI,FI"},
		{"URX after UF", UpstreamRetryLimitExceeded | UpstreamConnectionFailure, "UF,URX"},
		{"UT URX", UpstreamRetryLimitExceeded | UpstreamRequestTimeout, "UT,URX"},
		{"UH UO NR", NoRouteFound | UpstreamOverflow | NoHealthyUpstream, "UH,UO,NR"},
		{"undefined bit ignored", 1 << 31, "-"},
		{"undefined bit with UF", 1<<31 | UpstreamConnectionFailure, "UF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.flags.String(); got != tt.want {
				t.Errorf("%#x.String() = %q; want %q", uint32(tt.flags), got, tt.want)
			}
			if got := string(tt.flags.AppendTo([]byte("x"))); got != "x"+tt.want {
				t.Errorf("%#x.AppendTo(x) = %q; want %q", uint32(tt.flags), got, "x"+tt.want)
			}
		})
	}
}

func TestResponseFlagsAll(t *testing.T) {
	const want = "LH,UH,UT,LR,UR,UF,UC,UO,NR,DI,FI,RL,UAEX,RLSE,DC,URX,SI,IH,DPE,UMSDR,RFCF,NFCF,DT,UPE,NC,OM,DF,DO,DR"
	if got := ResponseFlags(1<<numFlags - 1).String(); got != want {
		t.Errorf("all flags = %q; want %q", got, want)
	}
}

func TestResponseFlagsHas(t *testing.T) {
	f := UpstreamConnectionFailure | UpstreamRetryLimitExceeded
	if !f.Has(UpstreamConnectionFailure) || f.Has(NoRouteFound) || !f.Has(0) {
		t.Errorf("Has on %v is wrong", f)
	}
}

func TestResponseFlagsStringAllocs(t *testing.T) {
	for _, f := range []ResponseFlags{0, NoRouteFound, UpstreamOverflow, DownstreamRemoteReset} {
		if n := testing.AllocsPerRun(100, func() { _ = f.String() }); n != 0 {
			t.Errorf("%v.String() allocates %v times; want 0", f, n)
		}
	}
}
