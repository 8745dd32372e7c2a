package main

import (
	"math"
	"math/rand/v2"
	"testing"
)

// normal returns n samples of N(mean, 1) from a seeded source.
func normal(seed uint64, n int, mean float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 42))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + r.NormFloat64()
	}
	return xs
}

func TestPercentileAndMedian(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"p50", percentile(s, 0.5), 5},
		{"p90", percentile(s, 0.9), 9},
		{"p99", percentile(s, 0.99), 10},
		{"p0", percentile(s, 0), 1},
		{"max", percentile(s, 1), 10},
		{"median even", median([]float64{4, 1, 3, 2}), 2.5},
		{"median odd", median([]float64{3, 1, 2}), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
	if !math.IsNaN(percentile(nil, 0.5)) || !math.IsNaN(median(nil)) {
		t.Error("percentile or median of no samples is not NaN")
	}
}

func TestKolmogorovQ(t *testing.T) {
	// Critical values of the Kolmogorov distribution (e.g. Smirnov 1948;
	// scipy.special.kolmogorov).
	tests := []struct {
		lambda, want, tol float64
	}{
		{0, 1, 0},
		{0.3, 0.99999, 1e-4},
		{0.5, 0.963945, 1e-5},
		{0.8, 0.544142, 1e-5},
		{1.0, 0.269999, 1e-5},
		{1.2239, 0.1, 1e-3},
		{1.3581, 0.05, 1e-3},
		{1.6276, 0.01, 1e-3},
		{2.0, 0.000671, 1e-5},
	}
	for _, tt := range tests {
		if got := kolmogorovQ(tt.lambda); math.Abs(got-tt.want) > tt.tol {
			t.Errorf("Q(%v) = %.6f, want %.6f ± %g", tt.lambda, got, tt.want, tt.tol)
		}
	}
	// Both series agree where they meet, and Q falls.
	if a, b := kolmogorovQ(math.Nextafter(1, 0)), kolmogorovQ(1); math.Abs(a-b) > 1e-9 {
		t.Errorf("Q just below 1 = %v, at 1 = %v", a, b)
	}
	for l := 0.05; l < 3; l += 0.05 {
		if kolmogorovQ(l+0.05) > kolmogorovQ(l) {
			t.Errorf("Q rises between %v and %v", l, l+0.05)
		}
	}
}

func TestKSTest(t *testing.T) {
	tests := []struct {
		name       string
		a, b       []float64
		wantD      float64 // exact, or -1 to skip
		dMin, dMax float64
		pMin, pMax float64
	}{
		{"identical", normal(1, 2000, 0), normal(1, 2000, 0), 0, 0, 0, 1, 1},
		{"same distribution", normal(1, 2000, 0), normal(2, 2000, 0), -1, 0, 0.06, 0.01, 1},
		{"shifted by 0.5 sd", normal(1, 2000, 0), normal(2, 2000, 0.5), -1, 0.15, 0.25, 0, 1e-10},
		{"separable", []float64{1, 2, 3}, []float64{4, 5, 6}, 1, 1, 1, 0, 0.1},
		{"ties", []float64{1, 1, 2, 2}, []float64{1, 2, 2, 2}, 0.25, 0.25, 0.25, 0.5, 1},
		{"empty", nil, []float64{1}, 0, 0, 0, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, p := ksTest(tt.a, tt.b)
			if tt.wantD >= 0 && d != tt.wantD {
				t.Errorf("D = %v, want %v", d, tt.wantD)
			}
			if d < tt.dMin || d > tt.dMax {
				t.Errorf("D = %v, want in [%v, %v]", d, tt.dMin, tt.dMax)
			}
			if p < tt.pMin || p > tt.pMax {
				t.Errorf("p = %v, want in [%v, %v]", p, tt.pMin, tt.pMax)
			}
			if d2, p2 := ksTest(tt.b, tt.a); d2 != d || p2 != p {
				t.Errorf("not symmetric: (%v, %v) vs (%v, %v)", d, p, d2, p2)
			}
		})
	}
}

// TestKSPValueCalibrated checks that under the null hypothesis about 5 % of
// the p-values fall below 0.05 (the asymptotic test is slightly
// conservative for finite samples).
func TestKSPValueCalibrated(t *testing.T) {
	const runs = 400
	below := 0
	for i := range runs {
		_, p := ksTest(normal(uint64(2*i), 500, 0), normal(uint64(2*i+1), 500, 0))
		if p < 0.05 {
			below++
		}
	}
	if frac := float64(below) / runs; frac > 0.09 {
		t.Errorf("%.1f %% of null p-values below 0.05, want about 5 %%", 100*frac)
	}
}

func TestThresholdAccuracy(t *testing.T) {
	tests := []struct {
		name     string
		a, b     []float64
		min, max float64
	}{
		{"identical", normal(1, 2000, 0), normal(1, 2000, 0), 0.5, 0.5},
		{"same distribution", normal(1, 2000, 0), normal(2, 2000, 0), 0.5, 0.53},
		{"separable", []float64{1, 2, 3}, []float64{4, 5, 6}, 1, 1},
		{"separable reversed", []float64{4, 5, 6}, []float64{1, 2, 3}, 1, 1},
		{"shifted by 2 sd", normal(1, 2000, 0), normal(2, 2000, 2), 0.82, 0.86},
		{"empty", nil, []float64{1}, 0.5, 0.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acc := thresholdAccuracy(tt.a, tt.b)
			if acc < tt.min || acc > tt.max {
				t.Errorf("accuracy = %v, want in [%v, %v]", acc, tt.min, tt.max)
			}
			// The best single threshold is the point of the KS statistic.
			if len(tt.a) > 0 && len(tt.b) > 0 {
				if want := (1 + ksStatistic(tt.a, tt.b)) / 2; math.Abs(acc-want) > 1e-12 {
					t.Errorf("accuracy = %v, want (1+D)/2 = %v", acc, want)
				}
			}
		})
	}
}
