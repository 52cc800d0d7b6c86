// The _cohort extension module; python/cohort/__init__.py is the public face.
#include <pybind11/pybind11.h>

namespace cohort::python {
void bind_math(pybind11::module_& m);
void bind_sim(pybind11::module_& m);
void bind_robust(pybind11::module_& m);
void bind_strategy(pybind11::module_& m);
#ifdef COHORT_PY_WITH_GRPC
void bind_join(pybind11::module_& m);
void bind_serve(pybind11::module_& m);
#endif
}  // namespace cohort::python

PYBIND11_MODULE(_cohort, m) {
  m.doc() = "Cohort: federated and low-communication learning (C++ core)";
  cohort::python::bind_math(m);
  cohort::python::bind_sim(m);
  cohort::python::bind_robust(m);
  cohort::python::bind_strategy(m);
#ifdef COHORT_PY_WITH_GRPC
  cohort::python::bind_join(m);   // a Python client in a `cohort serve` deployment
  cohort::python::bind_serve(m);  // a server, with a strategy written in Python or not
#endif
}
