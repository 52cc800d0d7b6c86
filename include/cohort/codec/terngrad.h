// terngrad[:c]: TernGrad (Wen et al., NeurIPS 2017). Per array of the layout, a scaler
// s = c * sigma(values) with gradient clipping (c > 0; default 2.5, the authors' advice), or
// s = max |value| (c = 0). Each value g becomes s * sign(g) * b with b ~ Bernoulli(min(|g| / s, 1)):
// unbiased for |g| <= s, values beyond are clipped to +-s. Two bits per value (sign + 1, four
// per byte) plus one float32 per array. The paper shares the scaler across workers with an
// extra exchange; federated clients do not talk to each other, so each client uses its own.
#pragma once

#include <memory>

#include "cohort/codec/codec.h"

namespace cohort::codec {
inline constexpr double kTernGradDefaultClip = 2.5;
std::unique_ptr<ValueCodec> make_terngrad(double clip_factor = kTernGradDefaultClip);
}  // namespace cohort::codec
