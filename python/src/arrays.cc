#include "arrays.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "cohort/core/format.h"

namespace cohort::python {

void raise(const Status& s) {
  if (s.code() == StatusCode::kInvalidArgument) throw py::value_error(s.message());
  throw std::runtime_error(s.to_string());
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// One array from Python, checked: a numpy array (or anything numpy can view without a copy,
// e.g. a CPU torch tensor) of float32, C-contiguous.
py::array checked_array(py::handle obj, const std::string& what) {
  py::object arr;
  if (py::isinstance<py::array>(obj)) {
    arr = py::reinterpret_borrow<py::object>(obj);
  } else if (py::hasattr(obj, "__array__") || py::hasattr(obj, "__array_interface__")) {
    // np.asarray of a torch tensor that requires grad raises: say so.
    try {
      arr = py::module_::import("numpy").attr("asarray")(obj);
    } catch (py::error_already_set& e) {
      throw py::type_error(what + ": cannot be viewed as a numpy array (" + e.what() +
                           "); pass tensor.detach().cpu().numpy()");
    }
  } else {
    throw py::type_error(what + ": expected a numpy array, got " +
                         std::string(py::str(obj.get_type().attr("__name__"))));
  }
  py::array a = arr.cast<py::array>();
  if (!a.dtype().is(py::dtype::of<float>())) {
    throw py::type_error(what + ": dtype is " + std::string(py::str(a.dtype())) +
                         ", expected float32 (use .astype(numpy.float32))");
  }
  if (!(a.flags() & py::array::c_style)) {
    throw py::value_error(what + ": array is not C-contiguous (use numpy.ascontiguousarray)");
  }
  return a;
}

std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s(static_cast<size_t>(a.ndim()));
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[static_cast<size_t>(i)] = a.shape(i);
  return s;
}

}  // namespace

ArrayRecord record_from_python(py::handle params, const std::string& what,
                               const std::shared_ptr<const ArrayLayout>& layout, bool* named) {
  std::vector<std::pair<std::string, py::array>> arrays;
  if (py::isinstance<py::dict>(params)) {
    *named = true;
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(params)) {
      if (!py::isinstance<py::str>(k)) {
        throw py::type_error(what + ": dict keys must be str (array names), got " +
                             std::string(py::str(k.get_type().attr("__name__"))));
      }
      const std::string name = k.cast<std::string>();
      arrays.emplace_back(name, checked_array(v, what + ": array '" + name + "'"));
    }
  } else if (py::isinstance<py::list>(params) || py::isinstance<py::tuple>(params)) {
    *named = false;
    size_t i = 0;
    for (py::handle v : params) {
      arrays.emplace_back(std::to_string(i), checked_array(v, what + ": array " + std::to_string(i)));
      ++i;
    }
  } else {
    throw py::type_error(what + ": expected a dict of name -> array or a list of arrays, got " +
                         std::string(py::str(params.get_type().attr("__name__"))));
  }
  std::shared_ptr<const ArrayLayout> lay = layout;
  if (lay) {
    if (arrays.size() != lay->num_arrays()) {
      throw py::value_error(what + ": " + std::to_string(arrays.size()) + " arrays, the model has " +
                            std::to_string(lay->num_arrays()));
    }
  } else {
    std::vector<ArraySpec> specs;
    for (auto& [name, a] : arrays) specs.push_back(ArraySpec{.name = name, .shape = shape_of(a)});
    lay = check(ArrayLayout::create(std::move(specs)));
  }
  ArrayRecord rec(lay);
  for (size_t i = 0; i < arrays.size(); ++i) {
    const auto& [name, a] = arrays[i];
    const std::string label = *named ? "array '" + name + "'" : "array " + std::to_string(i);
    const int64_t found = *named ? lay->find(name) : static_cast<int64_t>(i);
    if (found < 0) {
      throw py::value_error(what + ": " + label + " is not an array of the model (its arrays: " +
                            lay->describe() + ")");
    }
    const auto idx = static_cast<size_t>(found);
    const ArraySpec& spec = lay->specs()[idx];
    const std::vector<int64_t> shape = shape_of(a);
    const int64_t n = spec.numel;
    if (shape != spec.shape) {
      throw py::value_error(what + ": " + label + " has shape " + shape_text(shape) +
                            ", the model's is " + shape_text(spec.shape));
    }
    std::span<float> dst = rec.array(idx);
    const auto* src = static_cast<const float*>(a.data());
    for (int64_t j = 0; j < n; ++j) {
      if (!std::isfinite(src[j])) {
        throw py::value_error(what + ": " + label + " element " + std::to_string(j) + " is " +
                              (std::isnan(src[j]) ? "NaN" : "infinite"));
      }
    }
    std::memcpy(dst.data(), src, static_cast<size_t>(n) * sizeof(float));
  }
  return rec;
}

namespace {

py::array view_of(const float* data, const std::vector<int64_t>& shape, py::handle base,
                  bool writeable = false) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  std::vector<py::ssize_t> strides(dims.size());
  py::ssize_t stride = sizeof(float);
  for (size_t i = dims.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= dims[i];
  }
  py::array a(py::dtype::of<float>(), dims, strides, data, base);
  if (!writeable) a.attr("setflags")(py::arg("write") = false);
  return a;
}

py::capsule keep_alive(std::shared_ptr<const ArrayRecord> record) {
  auto* holder = new std::shared_ptr<const ArrayRecord>(std::move(record));
  return py::capsule(holder, [](void* p) { delete static_cast<std::shared_ptr<const ArrayRecord>*>(p); });
}

}  // namespace

py::object record_to_python(std::shared_ptr<const ArrayRecord> record, bool named,
                            bool writeable) {
  py::capsule base = keep_alive(record);
  const auto& specs = record->layout()->specs();
  if (named) {
    py::dict d;
    for (size_t i = 0; i < specs.size(); ++i) {
      d[py::str(specs[i].name)] = view_of(record->array(i).data(), specs[i].shape, base, writeable);
    }
    return d;
  }
  py::list l;
  for (size_t i = 0; i < specs.size(); ++i) {
    l.append(view_of(record->array(i).data(), specs[i].shape, base, writeable));
  }
  return l;
}

py::array flat_view(std::shared_ptr<const ArrayRecord> record) {
  py::capsule base = keep_alive(record);
  return view_of(record->data(), {record->numel()}, base);
}

py::dict to_python(const ConfigRecord& config) {
  py::dict d;
  for (const auto& [k, v] : config) {
    std::visit([&](const auto& x) { d[py::str(k)] = py::cast(x); }, v);
  }
  return d;
}

py::dict to_python(const MetricRecord& metrics) {
  py::dict d;
  for (const auto& [k, v] : metrics) d[py::str(k)] = v;
  return d;
}

MetricRecord metrics_from_python(py::handle obj, const std::string& what) {
  MetricRecord m;
  if (obj.is_none()) return m;
  if (!py::isinstance<py::dict>(obj)) {
    throw py::type_error(what + ": metrics must be a dict of str -> number, got " +
                         std::string(py::str(obj.get_type().attr("__name__"))));
  }
  for (auto [k, v] : py::reinterpret_borrow<py::dict>(obj)) {
    const std::string key = py::str(k);
    try {
      m[key] = v.cast<double>();
    } catch (const py::cast_error&) {
      throw py::type_error(what + ": metric '" + key + "' is not a number (" +
                           std::string(py::str(v.get_type().attr("__name__"))) + ")");
    }
  }
  return m;
}

ConfigRecord config_from_python(py::handle obj, const std::string& what) {
  ConfigRecord c;
  if (obj.is_none()) return c;
  if (!py::isinstance<py::dict>(obj)) throw py::type_error(what + ": expected a dict");
  for (auto [k, v] : py::reinterpret_borrow<py::dict>(obj)) {
    const std::string key = py::str(k);
    if (py::isinstance<py::bool_>(v)) {
      c[key] = v.cast<bool>();
    } else if (py::isinstance<py::int_>(v)) {
      c[key] = v.cast<int64_t>();
    } else if (py::isinstance<py::float_>(v)) {
      c[key] = v.cast<double>();
    } else if (py::isinstance<py::str>(v)) {
      c[key] = v.cast<std::string>();
    } else {
      throw py::type_error(what + ": '" + key + "' must be a bool, int, float or str, got " +
                           std::string(py::str(v.get_type().attr("__name__"))));
    }
  }
  return c;
}

}  // namespace cohort::python
