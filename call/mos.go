package call

import "math"

// MOS estimates the conversational quality of a call as a mean opinion
// score (1–4.5) with the ITU-T G.107 E-model, simplified:
//
//   - R = R0 − Is − Id − Ie,eff + A with the G.107 defaults folded into
//     R0 − Is = 93.2 and the advantage factor A = 0.
//   - Id, the delay impairment, uses only the one-way mouth-to-ear delay Ta
//     (Id = 0.024·Ta + 0.11·(Ta − 177.3)·H(Ta − 177.3)); echo terms are
//     dropped because both ends are assumed to cancel echo.
//   - Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl) with Ie = 0 and
//     Bpl = 25.1, the G.113 values for a codec with packet-loss concealment
//     (Opus has no G.113 entry; these are conservative for it), and
//     BurstR = 1 (random loss).
//
// oneWayDelayMs should include network, jitter-buffer and codec delay;
// lossPct is the packet loss the listener heard, in percent: after FEC
// recovery, with packets too late to play counted as lost (Stats.HeardLoss).
func MOS(oneWayDelayMs, lossPct float64) float64 {
	if oneWayDelayMs < 0 {
		oneWayDelayMs = 0
	}
	lossPct = math.Max(0, math.Min(100, lossPct))
	id := 0.024 * oneWayDelayMs
	if oneWayDelayMs > 177.3 {
		id += 0.11 * (oneWayDelayMs - 177.3)
	}
	const ie, bpl, burstR = 0.0, 25.1, 1.0
	ieEff := ie + (95-ie)*lossPct/(lossPct/burstR+bpl)
	r := 93.2 - id - ieEff
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return 1 + 0.035*r + r*(r-60)*(100-r)*7e-6
}
