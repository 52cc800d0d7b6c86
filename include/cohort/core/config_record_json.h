// A ConfigRecord (strategy parameters, task configs) as a JSON object and back, for config
// echoes, reports and messages between processes. Values keep their type: int64 -> integer,
// double -> number, bool, string.
#pragma once

#include "cohort/core/metrics.h"
#include "cohort/core/types.h"

namespace cohort {

Json to_json(const ConfigRecord& record);
// Members of other types (null, arrays, objects) are left out.
ConfigRecord config_record_from_json(const Json& object);

}  // namespace cohort
