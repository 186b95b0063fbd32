// The autograd op over the C kernels (kernels.c), in C++.
//
// The same op as fused.py's Python CFusedFunction (save the input and the parameters, call the C forward, and in
// backward the C backward with the parameter sums asked for), without Python in either direction: in a training
// step a Python autograd.Function's own code ran with the caches cold from the convolutions, ~30 us a call, 3-4 %
// of simple_cnn's step for its three activations. The kernels' addresses come from the loaded C library
// (cpu_kernels.py), registered once per kernel with the Python eager backward that serves a double backward.
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

constexpr int kMaxValues = 10;  // kernels.c's MAX_SUMS: parameter values in, gradient sums out
constexpr int kMaxSlots = 4096;  // kernels registered: 21 per C library loaded (tests load several builds)

using Forward = void (*)(const void*, void*, int64_t, const float*, int, int);
using Backward = void (*)(const void*, const void*, void*, int64_t, const float*, int, double*, int, int);

struct Slot {
  Forward forward = nullptr;
  Backward backward = nullptr;
  PyObject* eager_backward = nullptr;  // (g, x, params, needs) -> grads; a new reference, never released
};
// Registered under the GIL and read without it (backward runs on autograd's threads): a fixed array and a
// count published after its slot is written.
std::array<Slot, kMaxSlots> slots;
std::atomic<int> slot_count{0};

int64_t register_kernel(int64_t forward, int64_t backward, py::object eager_backward) {
  const int n = slot_count.load();
  TORCH_CHECK(n < kMaxSlots, "actlab's C++ op: more than ", kMaxSlots, " kernels registered");
  slots[n].forward = reinterpret_cast<Forward>(forward);
  slots[n].backward = reinterpret_cast<Backward>(backward);
  slots[n].eager_backward = eager_backward.inc_ref().ptr();
  slot_count.store(n + 1);
  return n;
}

const Slot& slot_at(int64_t slot) {
  TORCH_CHECK(slot >= 0 && slot < slot_count.load(), "actlab's C++ op: no kernel in slot ", slot);
  return slots[slot];
}

// kernels.c's io argument: the dtype the kernel reads and writes (cpu_kernels.IO_KINDS).
int io_kind(const at::Tensor& x) {
  switch (x.scalar_type()) {
    case at::kFloat: return 0;
    case at::kBFloat16: return 1;
    case at::kHalf: return 2;
    default: TORCH_CHECK(false, "actlab's C kernels take float32, bfloat16 and float16, not ", x.scalar_type());
  }
}

// The parameters' values flattened into float32, as cpu_kernels.param_values gives them.
void values_of(at::TensorList params, float* out) {
  int64_t n = 0;
  for (const at::Tensor& p : params) {
    TORCH_CHECK(n + p.numel() <= kMaxValues, "actlab's C kernels take at most ", kMaxValues, " parameter values");
    if (p.scalar_type() == at::kFloat && p.is_contiguous()) {
      std::memcpy(out + n, p.const_data_ptr<float>(), p.numel() * sizeof(float));
    } else {
      const at::Tensor f = p.detach().to(at::kFloat).contiguous();
      std::memcpy(out + n, f.const_data_ptr<float>(), f.numel() * sizeof(float));
    }
    n += p.numel();
  }
}

int threads() { return std::max(1, at::get_num_threads()); }

// The largest finite value of a parameter's dtype: a double sum beyond it is that sign's infinity, as a sum in
// the dtype would be (cpu_kernels._param_grad).
double largest(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat: return FLT_MAX;
    case at::kDouble: return DBL_MAX;
    case at::kHalf: return 65504.0;
    case at::kBFloat16: return 3.3895313892515355e38;
    default: TORCH_CHECK(false, "actlab's C kernels take floating parameters of 16 to 64 bits, not ", dtype);
  }
}

at::Tensor param_grad(const double* sums, const at::Tensor& p) {
  const double limit = largest(p.scalar_type());
  std::vector<double> values(sums, sums + p.numel());
  for (double& t : values)
    if (std::isfinite(t) && std::fabs(t) > limit) t = std::copysign(INFINITY, t);
  if (p.dim() == 0) return at::scalar_tensor(values[0], at::TensorOptions().dtype(p.scalar_type()));
  return at::tensor(values, at::kDouble).to(p.scalar_type()).reshape(p.sizes());
}

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The Python eager backward, which records its graph: a double backward (create_graph=True).
variable_list eager_backward(const Slot& s, const at::Tensor& g, const variable_list& saved,
                             const std::vector<bool>& needs) {
  py::gil_scoped_acquire gil;
  const size_t np = saved.size() - 1;
  py::tuple params(np), wanted(np + 1);
  for (size_t j = 0; j < np; j++) params[j] = py::cast(saved[1 + j]);
  for (size_t i = 0; i <= np; i++) wanted[i] = py::bool_(needs[i]);
  const py::object grads = py::reinterpret_borrow<py::object>(s.eager_backward)(g, saved[0], params, wanted);
  variable_list out(np + 2);  // x, the parameters, and the slot (no gradient)
  size_t i = 0;
  for (const py::handle item : grads) {
    if (i <= np && !item.is_none()) out[i] = item.cast<at::Tensor>();
    i++;
  }
  return out;
}

}  // namespace

namespace actlab {

// Its grad_fn reads torch::autograd::CppNode<actlab::CKernelOp>.
struct CKernelOp : public torch::autograd::Function<CKernelOp> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, at::TensorList params, int64_t slot) {
    const Slot& s = slot_at(slot);
    std::array<float, kMaxValues> values{};
    values_of(params, values.data());
    at::Tensor y = at::empty_like(x);
    s.forward(x.const_data_ptr(), y.mutable_data_ptr(), x.numel(), values.data(), threads(), io_kind(x));
    variable_list saved{x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["slot"] = slot;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const Slot& s = slot_at(ctx->saved_data["slot"].toInt());
    const size_t np = saved.size() - 1;
    std::vector<bool> needs(np + 1);
    for (size_t i = 0; i <= np; i++) needs[i] = ctx->needs_input_grad(i);
    at::Tensor g = grads[0];
    if (at::GradMode::is_enabled()) return eager_backward(s, g, saved, needs);
    const at::Tensor& x = saved[0];
    if (g.scalar_type() != x.scalar_type() || g.sizes() != x.sizes() || g.strides() != x.strides())
      g = at::empty_like(x).copy_(g);  // the same layout as x, element for element
    std::array<float, kMaxValues> values{};
    values_of(at::TensorList(saved).slice(1), values.data());
    int want = 0, offset = 0;  // bit k: the gradient sum of parameter value k
    for (size_t j = 0; j < np; j++) {
      const int n = static_cast<int>(saved[1 + j].numel());
      if (needs[1 + j]) want |= ((1 << n) - 1) << offset;
      offset += n;
    }
    std::array<double, kMaxValues> sums{};
    at::Tensor gx = at::empty_like(x);
    s.backward(g.const_data_ptr(), x.const_data_ptr(), gx.mutable_data_ptr(), x.numel(), values.data(), want,
               sums.data(), threads(), io_kind(x));
    variable_list out(np + 2);
    if (needs[0]) out[0] = gx;
    offset = 0;
    for (size_t j = 0; j < np; j++) {
      const at::Tensor& p = saved[1 + j];
      if (needs[1 + j]) out[1 + j] = param_grad(sums.data() + offset, p);
      offset += static_cast<int>(p.numel());
    }
    return out;
  }
};

at::Tensor apply(const at::Tensor& x, const std::vector<at::Tensor>& params, int64_t slot) {
  return CKernelOp::apply(x, at::TensorList(params), slot);
}

}  // namespace actlab

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("register_kernel", &register_kernel, "register a kernel's C forward and backward and its eager backward");
  // without the GIL while the kernels run, as ctypes' calls
  m.def("apply", &actlab::apply, "the autograd op over a registered kernel", py::call_guard<py::gil_scoped_release>());
}
