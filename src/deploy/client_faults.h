// Deliberately broken uploads for tests of the server's validation (`cohort join
// --inject-fault`, ClientOptions::fault). Internal to cohort_deploy.
#pragma once

#include <span>

#include "cohort/core/array_record.h"
#include "cohort/deploy/client.h"
#include "cohort/v1/fleet.pb.h"
#include "deploy/wire.h"

namespace cohort::deploy {

// Breaks an uncompressed upload of `layout`: kNaN sets delta[0] to NaN; kWrongShape makes the
// first array's first dimension one smaller in the header and cuts the payload to match.
// Returns the fault's name ("nan", "wrong-shape"), or null for kNone.
const char* inject_fault(InjectedFault fault, const ArrayLayout& layout, std::span<float> delta,
                         ::cohort::v1::UpdateHeader* header, wire::ByteRange* payload);

}  // namespace cohort::deploy
