// Parameters between Python and Cohort: a dict of name -> array (named tensors, e.g. a
// PyTorch state_dict turned into numpy) or a list/tuple of arrays (Flower's NumPyClient
// style, named "0", "1", ... inside Cohort). Internal to the _cohort module.
//
// Into Cohort every array is checked: float32, C-contiguous, the expected shape when a layout
// is given, and copied once into an ArrayRecord. Out of Cohort the arrays are read-only numpy
// views of the record's memory (no copy), which they keep alive.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "cohort/core/array_record.h"
#include "cohort/core/status.h"
#include "cohort/core/types.h"

namespace cohort::python {

namespace py = pybind11;

// Raises the Python exception for a non-OK status: ValueError for InvalidArgument (bad input),
// RuntimeError otherwise, with the status's message.
[[noreturn]] void raise(const Status& s);
inline void check(const Status& s) {
  if (!s.ok()) raise(s);
}
template <typename T>
T check(Result<T> r) {
  if (!r.ok()) raise(r.error());
  return std::move(*r);
}

// Parameters from Python. `what` names them in errors ("fit() of client 3 returned
// parameters: array 'fc.weight' has shape [10, 5], the model's is [10, 4]"). With `layout`
// the names (a dict) or the count (a list) and every shape must match it; without one the
// layout is made from the arrays. Sets *named to whether a dict was given. Throws ValueError /
// TypeError naming what was wrong (wrong type or dtype, not contiguous, shape, NaN/Inf).
ArrayRecord record_from_python(py::handle params, const std::string& what,
                               const std::shared_ptr<const ArrayLayout>& layout, bool* named);

// The record as a dict (named) or a list of numpy views sharing its memory: read-only, or
// writable for a record that is the caller's own copy (a client may train in place).
py::object record_to_python(std::shared_ptr<const ArrayRecord> record, bool named,
                            bool writeable = false);
// One flat float32 view of the record (read-only), kept alive by the view.
py::array flat_view(std::shared_ptr<const ArrayRecord> record);

// Python dict of str -> number/bool/str, from and to Cohort's records.
py::dict to_python(const ConfigRecord& config);
py::dict to_python(const MetricRecord& metrics);
// Throws TypeError naming the key whose value is not a number (or bool).
MetricRecord metrics_from_python(py::handle obj, const std::string& what);
ConfigRecord config_from_python(py::handle obj, const std::string& what);

}  // namespace cohort::python
