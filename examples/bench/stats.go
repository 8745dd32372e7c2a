package main

import (
	"math"
	"slices"
)

// sorted returns a sorted copy of xs.
func sorted(xs []float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s
}

// percentile returns the q-quantile (0 ≤ q ≤ 1) of sorted samples by the
// nearest-rank method, or NaN for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// median returns the median of samples (the mean of the two middle ones
// for an even count), or NaN for none.
func median(xs []float64) float64 {
	s := sorted(xs)
	n := len(s)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return s[n/2]
	default:
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// ksStatistic returns the two-sample Kolmogorov–Smirnov statistic
// D = sup_x |F_a(x) − F_b(x)| of the empirical distribution functions of a
// and b (0 when either is empty). Ties are handled by stepping past every
// copy of a value in both samples before comparing.
func ksStatistic(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	sa, sb := sorted(a), sorted(b)
	na, nb := float64(len(sa)), float64(len(sb))
	var i, j int
	var d float64
	for i < len(sa) && j < len(sb) {
		x := min(sa[i], sb[j])
		for i < len(sa) && sa[i] == x {
			i++
		}
		for j < len(sb) && sb[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/na-float64(j)/nb))
	}
	return d
}

// kolmogorovQ returns Q(λ) = P(K > λ) for the Kolmogorov distribution K,
// the limit of √n·D: the series 2 Σ_{j≥1} (−1)^{j−1} exp(−2j²λ²), or, for
// small λ where that series converges slowly, the equivalent
// 1 − (√(2π)/λ) Σ_{j≥1} exp(−(2j−1)²π²/(8λ²)).
func kolmogorovQ(lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	var sum float64
	if lambda < 1 {
		for j := 1; j <= 100; j++ {
			k := float64(2*j - 1)
			t := math.Exp(-k * k * math.Pi * math.Pi / (8 * lambda * lambda))
			sum += t
			if t < 1e-17 {
				break
			}
		}
		return min(max(1-math.Sqrt(2*math.Pi)/lambda*sum, 0), 1)
	}
	sign := 1.0
	for j := 1; j <= 100; j++ {
		fj := float64(j)
		t := math.Exp(-2 * fj * fj * lambda * lambda)
		sum += sign * t
		if t < 1e-17 {
			break
		}
		sign = -sign
	}
	return min(max(2*sum, 0), 1)
}

// ksTest returns the two-sample Kolmogorov–Smirnov statistic of a and b
// and its asymptotic p-value Q(D·√(nm/(n+m))), the probability of a D at
// least this large if both samples come from one distribution. It is the
// "asymp" method of scipy.stats.ks_2samp.
func ksTest(a, b []float64) (d, p float64) {
	d = ksStatistic(a, b)
	if len(a) == 0 || len(b) == 0 {
		return d, 1
	}
	n, m := float64(len(a)), float64(len(b))
	return d, kolmogorovQ(d * math.Sqrt(n*m/(n+m)))
}

// thresholdAccuracy returns the best balanced accuracy of a one-request
// guess "class a if the time is ≤ t, else b" (or the reverse) over every
// threshold t between the pooled samples: an observer who knows both
// distributions and sees one response time does no better with a single
// threshold. Balanced accuracy is the mean of the two classes' hit rates,
// so 0.5 is a coin toss and 1 a perfect split; it equals (1 + D)/2 for
// the KS statistic D of a and b.
func thresholdAccuracy(a, b []float64) float64 {
	if len(a) == 0 || len(b) == 0 {
		return 0.5
	}
	sa, sb := sorted(a), sorted(b)
	na, nb := float64(len(sa)), float64(len(sb))
	best := 0.5
	var i, j int
	// Each step puts every sample ≤ the next pooled value below the
	// threshold.
	for i < len(sa) || j < len(sb) {
		var x float64
		switch {
		case i == len(sa):
			x = sb[j]
		case j == len(sb):
			x = sa[i]
		default:
			x = min(sa[i], sb[j])
		}
		for i < len(sa) && sa[i] == x {
			i++
		}
		for j < len(sb) && sb[j] == x {
			j++
		}
		// a below, b above; and the reverse.
		acc := (float64(i)/na + (nb-float64(j))/nb) / 2
		best = max(best, acc, 1-acc)
	}
	return best
}
