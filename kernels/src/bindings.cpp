// Python bindings of the kernels: argument checks that name the bad argument, numpy arrays in and
// out (on the host backend without hidden copies), the GIL released while kernels run. Built twice
// (design.md §4): module v2xfusion_kernels._core over the host subset (module-level functions and
// HostKernels), module v2xfusion_kernels._sycl with V2X_SYCL_RTC (SyclKernels: the same kernels,
// compiled at run time for a SYCL device). Every kernel function takes the Backend it runs on.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "backend.hpp"
#include "bevpool.hpp"
#include "centerhead_decode.hpp"
#include "pillar_scatter.hpp"
#include "rotated_nms.hpp"
#include "sparse_conv.hpp"
#include "staging.hpp"
#include "voxelize.hpp"

namespace py = pybind11;

// A namespace of its own per module, so that the classes registered with pybind11 (whose shared
// registry matches C++ types by name) never mix between _core and _sycl.
#if defined(V2X_SYCL_RTC)
#define V2X_BINDINGS v2x_sycl_bindings
#else
#define V2X_BINDINGS v2x_host_bindings
#endif

namespace V2X_BINDINGS {
namespace {

using v2x::Backend;
using v2x::DeviceInput;
using v2x::DeviceOutput;
using FloatArray = py::array_t<float, py::array::c_style>;
using IntArray = py::array_t<int32_t, py::array::c_style>;

[[noreturn]] void fail(const std::string& message) { throw py::value_error(message); }

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) {
    s += std::to_string(a.shape(d));
    if (d + 1 < a.ndim() || a.ndim() == 1) s += ",";
    if (d + 1 < a.ndim()) s += " ";
  }
  return s + ")";
}

// The argument as a C-contiguous array of T with `ndim` dimensions, no copy; shape[d] >= 0 pins
// dimension d. Anything else is a ValueError naming the argument and the expected form.
template <typename T>
py::array_t<T, py::array::c_style> as_array(const py::handle& obj, const char* name, int ndim,
                                            std::vector<py::ssize_t> shape,
                                            const char* expected) {
  const char* type = std::is_same<T, float>::value ? "float32" : "int32";
  if (!py::isinstance<py::array>(obj)) {
    fail(std::string(name) + ": expected a numpy " + type + " array " + expected + ", got " +
         std::string(py::str(py::type::of(obj).attr("__name__"))));
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<T>())) {
    fail(std::string(name) + ": expected dtype " + type + ", got " +
         std::string(py::str(a.dtype())) + " (convert with .astype(np." + type + "))");
  }
  if (a.ndim() != ndim) {
    fail(std::string(name) + ": expected shape " + expected + ", got " + shape_text(a));
  }
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] >= 0 && a.shape(d) != shape[d]) {
      fail(std::string(name) + ": expected shape " + expected + ", got " + shape_text(a));
    }
  }
  if (!(a.flags() & py::array::c_style)) {
    fail(std::string(name) + ": must be C-contiguous (use np.ascontiguousarray)");
  }
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
}

// The caller's output buffer `out` if given (float32, C-contiguous, writable, exactly `shape`),
// else a new array of that shape: lets a pipeline allocate its dense outputs once.
FloatArray output_array(const py::object& out, std::vector<py::ssize_t> shape, const std::string& expected) {
  if (out.is_none()) return FloatArray(shape);
  FloatArray a = as_array<float>(out, "out", static_cast<int>(shape.size()), shape, expected.c_str());
  if (!a.writeable()) fail("out: must be writable");
  return a;
}

std::string shape_string(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (size_t d = 0; d < shape.size(); ++d) s += std::to_string(shape[d]) + (d + 1 < shape.size() ? ", " : ")");
  return s;
}

std::vector<float> floats(const std::vector<double>& values, const char* name, size_t count) {
  if (values.size() != count) {
    fail(std::string(name) + ": expected " + std::to_string(count) + " numbers, got " +
         std::to_string(values.size()));
  }
  std::vector<float> out;
  for (double v : values) {
    if (!std::isfinite(v)) fail(std::string(name) + ": values must be finite");
    out.push_back(static_cast<float>(v));
  }
  return out;
}

void require_positive(const std::vector<float>& v, size_t begin, size_t end, const char* name) {
  for (size_t i = begin; i < end; ++i) {
    if (!(v[i] > 0.0f)) fail(std::string(name) + ": every step / size must be > 0");
  }
}

std::vector<int32_t> ints3(const py::handle& obj, const char* name) {
  std::vector<int32_t> out;
  if (py::isinstance<py::int_>(obj)) {
    out.assign(3, obj.cast<int32_t>());
  } else {
    out = obj.cast<std::vector<int32_t>>();
    if (out.size() != 3) fail(std::string(name) + ": expected an int or 3 ints (z, y, x)");
  }
  return out;
}

void check_grid_cells(const int32_t dims[3], const char* what) {
  for (int j = 0; j < 3; ++j) {
    if (dims[j] <= 0) fail(std::string(what) + ": the grid has an empty axis");
  }
  const double cells = static_cast<double>(dims[0]) * dims[1] * dims[2];
  if (cells >= 2147483647.0) {
    fail(std::string(what) + ": the grid has " + std::to_string(static_cast<long long>(cells)) +
         " cells, more than int32 indexing allows");
  }
}

v2x::VoxelGrid voxel_grid(const std::vector<double>& voxel_size, const std::vector<double>& pc_range) {
  const std::vector<float> vs = floats(voxel_size, "voxel_size", 3);
  const std::vector<float> pr = floats(pc_range, "pc_range", 6);
  require_positive(vs, 0, 3, "voxel_size");
  for (int j = 0; j < 3; ++j) {
    if (!(pr[3 + j] > pr[j])) fail("pc_range: each max must exceed its min ([x0, y0, z0, x1, y1, z1])");
  }
  v2x::VoxelGrid g = v2x::make_voxel_grid(pr.data(), vs.data());
  check_grid_cells(g.dims, "voxel_size / pc_range");
  return g;
}

FloatArray points_array(const py::handle& obj) {
  FloatArray p = as_array<float>(obj, "points", 2, {-1, -1}, "(N, C) with C >= 3");
  if (p.shape(1) < 3) fail("points: expected shape (N, C) with C >= 3, got " + shape_text(p));
  if (p.shape(0) >= std::numeric_limits<int32_t>::max()) fail("points: too many rows");
  return p;
}

py::tuple voxelize_hard(Backend& be, const py::handle& points_obj,
                        const std::vector<double>& voxel_size, const std::vector<double>& pc_range,
                        int32_t max_points, int32_t max_voxels, int32_t batch_index) {
  FloatArray points = points_array(points_obj);
  const v2x::VoxelGrid grid = voxel_grid(voxel_size, pc_range);
  if (max_points <= 0) fail("max_points: must be > 0");
  if (max_voxels <= 0) fail("max_voxels: must be > 0");
  const size_t n = static_cast<size_t>(points.shape(0));
  const int c = static_cast<int>(points.shape(1));
  const float* host_points = points.data();
  sycl::queue& q = be.queue();
  std::optional<DeviceInput<float>> device_points;
  std::unique_ptr<v2x::HardVoxelization> vox;
  {
    py::gil_scoped_release release;
    device_points.emplace(q, host_points, n * static_cast<size_t>(c));
    vox = std::make_unique<v2x::HardVoxelization>(q, device_points->get(), n, c, grid, max_points,
                                                  max_voxels);
  }
  const py::ssize_t v = vox->num_voxels();
  FloatArray voxels({v, static_cast<py::ssize_t>(max_points), static_cast<py::ssize_t>(c)});
  IntArray coors({v, py::ssize_t{4}});
  IntArray num_points({v});
  float* voxels_out = voxels.mutable_data();
  int32_t* coors_out = coors.mutable_data();
  int32_t* num_out = num_points.mutable_data();
  const size_t voxels_size = static_cast<size_t>(voxels.size());
  {
    py::gil_scoped_release release;
    DeviceOutput<float> dv(q, voxels_out, voxels_size);
    DeviceOutput<int32_t> dc(q, coors_out, 4 * static_cast<size_t>(v));
    DeviceOutput<int32_t> dn(q, num_out, static_cast<size_t>(v));
    vox->fill(dv.get(), dc.get(), dn.get(), batch_index);
    dv.finish();
    dc.finish();
    dn.finish();
  }
  return py::make_tuple(voxels, coors, num_points, vox->stats());
}

py::tuple voxelize_dynamic(Backend& be, const py::handle& points_obj,
                           const std::vector<double>& voxel_size,
                           const std::vector<double>& pc_range, int32_t batch_index) {
  FloatArray points = points_array(points_obj);
  const v2x::VoxelGrid grid = voxel_grid(voxel_size, pc_range);
  const size_t n = static_cast<size_t>(points.shape(0));
  const int c = static_cast<int>(points.shape(1));
  const float* host_points = points.data();
  sycl::queue& q = be.queue();
  std::optional<DeviceInput<float>> device_points;
  std::unique_ptr<v2x::DynamicVoxelization> vox;
  {
    py::gil_scoped_release release;
    device_points.emplace(q, host_points, n * static_cast<size_t>(c));
    vox = std::make_unique<v2x::DynamicVoxelization>(q, device_points->get(), n, c, grid);
  }
  const py::ssize_t v = vox->num_voxels();
  FloatArray features({v, static_cast<py::ssize_t>(c)});
  IntArray coors({v, py::ssize_t{4}});
  IntArray num_points({v});
  float* features_out = features.mutable_data();
  int32_t* coors_out = coors.mutable_data();
  int32_t* num_out = num_points.mutable_data();
  {
    py::gil_scoped_release release;
    DeviceOutput<float> df(q, features_out, static_cast<size_t>(v) * static_cast<size_t>(c));
    DeviceOutput<int32_t> dc(q, coors_out, 4 * static_cast<size_t>(v));
    DeviceOutput<int32_t> dn(q, num_out, static_cast<size_t>(v));
    vox->fill(df.get(), dc.get(), dn.get(), batch_index);
    df.finish();
    dc.finish();
    dn.finish();
  }
  return py::make_tuple(features, coors, num_points, vox->stats());
}

FloatArray pillar_scatter(Backend& be, const py::handle& features_obj, const py::handle& coors_obj,
                          int32_t nx, int32_t ny, const py::object& out) {
  FloatArray features = as_array<float>(features_obj, "features", 2, {-1, -1}, "(V, C)");
  const py::ssize_t v = features.shape(0);
  IntArray coors = as_array<int32_t>(coors_obj, "coors", 2, {v, 4}, "(V, 4) as (b, x, y, z)");
  if (nx <= 0) fail("nx: must be > 0");
  if (ny <= 0) fail("ny: must be > 0");
  const int32_t* c = coors.data();
  for (py::ssize_t i = 0; i < v; ++i) {
    if (c[4 * i] != 0) fail("coors: batch index must be 0 (one frame per call), row " + std::to_string(i));
    if (c[4 * i + 1] < 0 || c[4 * i + 1] >= nx || c[4 * i + 2] < 0 || c[4 * i + 2] >= ny) {
      fail("coors: row " + std::to_string(i) + " lies outside the (nx, ny) = (" +
           std::to_string(nx) + ", " + std::to_string(ny) + ") canvas");
    }
  }
  const int32_t channels = static_cast<int32_t>(features.shape(1));
  const std::vector<py::ssize_t> shape{channels, nx, ny};
  FloatArray canvas = output_array(out, shape, shape_string(shape) + " = (C, nx, ny)");
  const float* host_features = features.data();
  float* host_canvas = canvas.mutable_data();
  const size_t canvas_size = static_cast<size_t>(canvas.size());
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> df(q, host_features, static_cast<size_t>(v) * channels);
    const DeviceInput<int32_t> dc(q, c, 4 * static_cast<size_t>(v));
    DeviceOutput<float> dout(q, host_canvas, canvas_size);
    v2x::pillar_scatter(q, df.get(), dc.get(), static_cast<size_t>(v), channels, nx, ny,
                        dout.get());
    dout.finish();
  }
  return canvas;
}

v2x::BevGrid bev_grid(const std::vector<double>& xbound, const std::vector<double>& ybound,
                      const std::vector<double>& zbound) {
  const std::vector<float> xb = floats(xbound, "xbound", 3);
  const std::vector<float> yb = floats(ybound, "ybound", 3);
  const std::vector<float> zb = floats(zbound, "zbound", 3);
  require_positive(xb, 2, 3, "xbound");
  require_positive(yb, 2, 3, "ybound");
  require_positive(zb, 2, 3, "zbound");
  const v2x::BevGrid g = v2x::make_bev_grid(xb.data(), yb.data(), zb.data());
  check_grid_cells(g.dims, "xbound / ybound / zbound");
  return g;
}

FloatArray frustum_points(Backend& be, const py::handle& cam_to_lidar_obj,
                          const py::handle& intrinsics_obj, const py::handle& img_aug_obj,
                          const py::handle& depths_obj,
                          const std::vector<int32_t>& image_size,
                          const std::vector<int32_t>& feature_size) {
  FloatArray cam_to_lidar = as_array<float>(cam_to_lidar_obj, "cam_to_lidar", 2, {4, 4}, "(4, 4)");
  FloatArray intrinsics = as_array<float>(intrinsics_obj, "intrinsics", 2, {3, 3}, "(3, 3)");
  FloatArray img_aug = as_array<float>(img_aug_obj, "img_aug", 2, {4, 4}, "(4, 4)");
  FloatArray depths = as_array<float>(depths_obj, "depths", 1, {-1}, "(D,)");
  if (image_size.size() != 2 || image_size[0] < 2 || image_size[1] < 2) {
    fail("image_size: expected (W, H), both >= 2");
  }
  if (feature_size.size() != 2 || feature_size[0] < 2 || feature_size[1] < 2) {
    fail("feature_size: expected (fW, fH), both >= 2");
  }
  // Host-side set-up in double: K^-1 and the inverse image augmentation, then stored as float.
  auto inv3 = [](const double m[9], double out[9], const char* name) {
    const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                       m[2] * (m[3] * m[7] - m[4] * m[6]);
    if (!(std::fabs(det) > 1e-12)) fail(std::string(name) + ": the 3x3 part is not invertible");
    out[0] = (m[4] * m[8] - m[5] * m[7]) / det;
    out[1] = (m[2] * m[7] - m[1] * m[8]) / det;
    out[2] = (m[1] * m[5] - m[2] * m[4]) / det;
    out[3] = (m[5] * m[6] - m[3] * m[8]) / det;
    out[4] = (m[0] * m[8] - m[2] * m[6]) / det;
    out[5] = (m[2] * m[3] - m[0] * m[5]) / det;
    out[6] = (m[3] * m[7] - m[4] * m[6]) / det;
    out[7] = (m[1] * m[6] - m[0] * m[7]) / det;
    out[8] = (m[0] * m[4] - m[1] * m[3]) / det;
  };
  double k[9], kinv[9], aug[9], auginv[9], rot[9];
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      k[3 * r + c] = intrinsics.at(r, c);
      aug[3 * r + c] = img_aug.at(r, c);
      rot[3 * r + c] = cam_to_lidar.at(r, c);
    }
  }
  inv3(k, kinv, "intrinsics");
  inv3(aug, auginv, "img_aug");
  v2x::FrustumCamera cam{};
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      double comb = 0.0;
      for (int t = 0; t < 3; ++t) comb += rot[3 * r + t] * kinv[3 * t + c];
      cam.combine[3 * r + c] = static_cast<float>(comb);
      cam.undo_aug[3 * r + c] = static_cast<float>(auginv[3 * r + c]);
    }
    cam.aug_translation[r] = img_aug.at(r, 3);
    cam.translation[r] = cam_to_lidar.at(r, 3);
  }
  cam.u_step = static_cast<float>(image_size[0] - 1) / static_cast<float>(feature_size[0] - 1);
  cam.v_step = static_cast<float>(image_size[1] - 1) / static_cast<float>(feature_size[1] - 1);
  const py::ssize_t d = depths.shape(0);
  FloatArray points({d, static_cast<py::ssize_t>(feature_size[1]),
                     static_cast<py::ssize_t>(feature_size[0]), py::ssize_t{3}});
  const float* host_depths = depths.data();
  float* host_points = points.mutable_data();
  const size_t points_size = static_cast<size_t>(points.size());
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> dd(q, host_depths, static_cast<size_t>(d));
    DeviceOutput<float> dp(q, host_points, points_size);
    v2x::frustum_points(q, cam, dd.get(), static_cast<int32_t>(d), feature_size[0],
                        feature_size[1], dp.get());
    dp.finish();
  }
  return points;
}

py::tuple bev_pool_geometry(Backend& be, const py::handle& points_obj,
                            const std::vector<double>& xbound, const std::vector<double>& ybound,
                            const std::vector<double>& zbound) {
  py::array raw = points_obj.cast<py::array>();
  if (raw.ndim() < 2 || raw.shape(raw.ndim() - 1) != 3) {
    fail("points: expected shape (D, fH, fW, 3) or (P, 3), got " + shape_text(raw));
  }
  FloatArray points = as_array<float>(points_obj, "points", static_cast<int>(raw.ndim()),
                                      std::vector<py::ssize_t>(raw.ndim(), -1),
                                      "(D, fH, fW, 3) or (P, 3)");
  const size_t n = static_cast<size_t>(points.size() / 3);
  if (n >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) fail("points: too many points");
  const v2x::BevGrid grid = bev_grid(xbound, ybound, zbound);
  const float* host_points = points.data();
  sycl::queue& q = be.queue();
  std::unique_ptr<v2x::BevPoolGeometry> geom;
  {
    py::gil_scoped_release release;
    const DeviceInput<float> dp(q, host_points, 3 * n);
    geom = std::make_unique<v2x::BevPoolGeometry>(q, dp.get(), n, grid);
  }
  const size_t k = geom->num_intervals();
  IntArray indices({static_cast<py::ssize_t>(n)});
  IntArray intervals({static_cast<py::ssize_t>(k), py::ssize_t{3}});
  int32_t* host_indices = indices.mutable_data();
  int32_t* host_intervals = intervals.mutable_data();
  {
    py::gil_scoped_release release;
    DeviceOutput<int32_t> di(q, host_indices, n);
    DeviceOutput<int32_t> dv(q, host_intervals, 3 * k);
    geom->fill(di.get(), dv.get());
    di.finish();
    dv.finish();
  }
  return py::make_tuple(indices, intervals);
}

FloatArray bev_pool(Backend& be, const py::handle& depth_obj, const py::handle& context_obj,
                    const py::handle& indices_obj, const py::handle& intervals_obj,
                    const std::vector<double>& xbound, const std::vector<double>& ybound,
                    const std::vector<double>& zbound, const py::object& out_obj) {
  FloatArray depth = as_array<float>(depth_obj, "depth", 3, {-1, -1, -1}, "(D, fH, fW)");
  FloatArray context = as_array<float>(context_obj, "context", 3,
                                       {depth.shape(1), depth.shape(2), -1}, "(fH, fW, C)");
  const size_t points = static_cast<size_t>(depth.size());
  IntArray indices = as_array<int32_t>(indices_obj, "indices", 1, {-1}, "(P,)");
  IntArray intervals = as_array<int32_t>(intervals_obj, "intervals", 2, {-1, 3},
                                         "(K + 1, 3) rows (start, end, bev_rank)");
  const v2x::BevGrid grid = bev_grid(xbound, ybound, zbound);
  const int64_t cells = static_cast<int64_t>(grid.dims[0]) * grid.dims[1] * grid.dims[2];
  const int32_t* idx = indices.data();
  const size_t p = static_cast<size_t>(indices.shape(0));
  for (size_t j = 0; j < p; ++j) {
    if (idx[j] < 0 || static_cast<size_t>(idx[j]) >= points) {
      fail("indices: entry " + std::to_string(j) + " = " + std::to_string(idx[j]) +
           " is not a frustum point of depth (D * fH * fW = " + std::to_string(points) + ")");
    }
  }
  const int32_t* iv = intervals.data();
  const py::ssize_t k = intervals.shape(0);
  if (k == 0 || iv[3 * (k - 1) + 2] != -1) {
    fail("intervals: the last row must be the sentinel (start, end, -1)");
  }
  for (py::ssize_t r = 0; r < k; ++r) {
    const int32_t s = iv[3 * r], e = iv[3 * r + 1], rank = iv[3 * r + 2];
    if (s < 0 || e < s || static_cast<size_t>(e) > p) {
      fail("intervals: row " + std::to_string(r) + " = (" + std::to_string(s) + ", " +
           std::to_string(e) + ") is not a range of indices (P = " + std::to_string(p) + ")");
    }
    if (rank >= cells || (rank < 0 && rank != -1)) {
      fail("intervals: row " + std::to_string(r) + " has bev_rank " + std::to_string(rank) +
           " outside the BEV grid (" + std::to_string(cells) + " cells)");
    }
  }
  const int32_t channels = static_cast<int32_t>(context.shape(2));
  const std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(grid.dims[2]) * channels, grid.dims[0],
                                       grid.dims[1]};
  FloatArray out = output_array(out_obj, shape, shape_string(shape) + " = (nz * C, nx, ny)");
  const float* host_depth = depth.data();
  const float* host_context = context.data();
  const size_t context_size = static_cast<size_t>(context.size());
  float* host_out = out.mutable_data();
  const size_t out_size = static_cast<size_t>(out.size());
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> dd(q, host_depth, points);
    const DeviceInput<float> dc(q, host_context, context_size);
    const DeviceInput<int32_t> di(q, idx, p);
    const DeviceInput<int32_t> dv(q, iv, 3 * static_cast<size_t>(k));
    DeviceOutput<float> dout(q, host_out, out_size);
    v2x::bev_pool(q, dd.get(), dc.get(), channels,
                  static_cast<size_t>(depth.shape(1) * depth.shape(2)), di.get(), dv.get(),
                  static_cast<size_t>(k), grid.dims, dout.get());
    dout.finish();
  }
  return out;
}

// A rulebook and the backend whose device memory holds it (kept alive as long as the rulebook).
struct PyRulebook {
  std::shared_ptr<Backend> backend;
  std::unique_ptr<v2x::ConvRulebook> rulebook;
  std::vector<int32_t> in_shape;
};

IntArray copy_out(const PyRulebook& r, const int32_t* data, std::vector<py::ssize_t> shape) {
  IntArray a(shape);
  const size_t bytes = static_cast<size_t>(a.size()) * sizeof(int32_t);
  r.backend->queue().memcpy(a.mutable_data(), data, bytes).wait();
  return a;
}

PyRulebook sparse_conv_rulebook(Backend& be, const py::handle& coors_obj,
                                const std::vector<int32_t>& spatial_shape,
                                const py::handle& kernel_size, const py::handle& stride,
                                const py::handle& padding, const py::handle& dilation, bool subm) {
  IntArray coors = as_array<int32_t>(coors_obj, "coors", 2, {-1, 4}, "(N, 4) as (b, z, y, x)");
  if (spatial_shape.size() != 3) fail("spatial_shape: expected (D, H, W)");
  v2x::ConvGeometry g{};
  const std::vector<int32_t> ks = ints3(kernel_size, "kernel_size");
  const std::vector<int32_t> st = ints3(stride, "stride");
  const std::vector<int32_t> pd = ints3(padding, "padding");
  const std::vector<int32_t> dl = ints3(dilation, "dilation");
  g.kernel_volume = 1;
  for (int d = 0; d < 3; ++d) {
    g.in_dims[d] = spatial_shape[d];
    g.kernel[d] = ks[d];
    g.stride[d] = st[d];
    g.padding[d] = pd[d];
    g.dilation[d] = dl[d];
    if (spatial_shape[d] <= 0) fail("spatial_shape: every axis must be > 0");
    if (ks[d] <= 0) fail("kernel_size: must be > 0");
    if (st[d] <= 0) fail("stride: must be > 0");
    if (pd[d] < 0) fail("padding: must be >= 0");
    if (dl[d] <= 0) fail("dilation: must be > 0");
    if (subm) {
      if (st[d] != 1) fail("stride: SubMConv3d needs stride 1");
      if (ks[d] % 2 != 1) fail("kernel_size: SubMConv3d needs an odd kernel");
      if (pd[d] != ks[d] / 2 * dl[d]) {
        fail("padding: SubMConv3d keeps sites in place, padding must be kernel_size // 2 * dilation");
      }
      g.out_dims[d] = spatial_shape[d];
    } else {
      g.out_dims[d] = (spatial_shape[d] + 2 * pd[d] - dl[d] * (ks[d] - 1) - 1) / st[d] + 1;
      if (g.out_dims[d] <= 0) fail("kernel_size / padding: the output grid is empty");
    }
    g.kernel_volume *= ks[d];
  }
  if (g.kernel_volume > 343) fail("kernel_size: at most 7 x 7 x 7");
  const int32_t* c = coors.data();
  const py::ssize_t n = coors.shape(0);
  int32_t batch_size = 1;
  for (py::ssize_t i = 0; i < n; ++i) {
    if (c[4 * i] < 0) fail("coors: negative batch index in row " + std::to_string(i));
    batch_size = std::max(batch_size, c[4 * i] + 1);
    for (int d = 0; d < 3; ++d) {
      if (c[4 * i + 1 + d] < 0 || c[4 * i + 1 + d] >= spatial_shape[d]) {
        fail("coors: row " + std::to_string(i) + " lies outside spatial_shape");
      }
    }
  }
  const double keys = static_cast<double>(batch_size) *
                      std::max(static_cast<double>(g.in_dims[0]) * g.in_dims[1] * g.in_dims[2],
                               static_cast<double>(g.out_dims[0]) * g.out_dims[1] * g.out_dims[2]);
  if (keys >= 2147483647.0) fail("spatial_shape: too many sites for int32 indexing");
  PyRulebook out;
  out.backend = be.shared_from_this();
  out.in_shape = spatial_shape;
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<int32_t> dc(q, c, 4 * static_cast<size_t>(n));
    out.rulebook =
        std::make_unique<v2x::ConvRulebook>(q, dc.get(), static_cast<size_t>(n), batch_size, g,
                                            subm);
  }
  return out;
}

FloatArray sparse_conv(Backend& be, const py::handle& features_obj, const PyRulebook& rb,
                       const py::handle& weight_obj, const py::object& bias_obj, bool relu) {
  if (rb.backend.get() != &be) {
    fail("rulebook: built by another backend (" + rb.backend->device() +
         "); build it with this one");
  }
  const v2x::ConvRulebook& r = *rb.rulebook;
  const v2x::ConvGeometry& g = r.geometry();
  FloatArray features = as_array<float>(features_obj, "features", 2,
                                        {static_cast<py::ssize_t>(r.num_in()), -1},
                                        "(N, Cin) with N the rulebook's input count");
  const py::ssize_t cin = features.shape(1);
  FloatArray weight = as_array<float>(weight_obj, "weight", 5,
                                      {-1, g.kernel[0], g.kernel[1], g.kernel[2], cin},
                                      "(Cout, kd, kh, kw, Cin) as spconv 2.x stores it");
  const py::ssize_t cout = weight.shape(0);
  std::optional<FloatArray> bias;
  if (!bias_obj.is_none()) bias = as_array<float>(bias_obj, "bias", 1, {cout}, "(Cout,)");
  FloatArray out({static_cast<py::ssize_t>(r.num_out()), cout});
  const float* host_features = features.data();
  const size_t features_size = static_cast<size_t>(features.size());
  const float* host_weight = weight.data();
  const size_t weight_size = static_cast<size_t>(weight.size());
  const float* host_bias = bias ? bias->data() : nullptr;
  float* host_out = out.mutable_data();
  const size_t out_size = static_cast<size_t>(out.size());
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> df(q, host_features, features_size);
    const DeviceInput<float> dw(q, host_weight, weight_size);
    const DeviceInput<float> db(q, host_bias, static_cast<size_t>(cout));
    DeviceOutput<float> dout(q, host_out, out_size);
    v2x::sparse_conv(q, r, df.get(), static_cast<int32_t>(cin), dw.get(), db.get(),
                     static_cast<int32_t>(cout), relu, dout.get());
    dout.finish();
  }
  return out;
}

FloatArray sparse_to_dense(Backend& be, const py::handle& features_obj, const py::handle& coors_obj,
                           const std::vector<int32_t>& spatial_shape, const py::object& out) {
  FloatArray features = as_array<float>(features_obj, "features", 2, {-1, -1}, "(N, C)");
  const py::ssize_t n = features.shape(0);
  IntArray coors = as_array<int32_t>(coors_obj, "coors", 2, {n, 4}, "(N, 4) as (b, z, y, x)");
  if (spatial_shape.size() != 3) fail("spatial_shape: expected (D, H, W)");
  int32_t dims[3] = {spatial_shape[0], spatial_shape[1], spatial_shape[2]};
  check_grid_cells(dims, "spatial_shape");
  const int32_t* c = coors.data();
  for (py::ssize_t i = 0; i < n; ++i) {
    if (c[4 * i] != 0) fail("coors: batch index must be 0 (one frame per call), row " + std::to_string(i));
    for (int d = 0; d < 3; ++d) {
      if (c[4 * i + 1 + d] < 0 || c[4 * i + 1 + d] >= dims[d]) {
        fail("coors: row " + std::to_string(i) + " lies outside spatial_shape");
      }
    }
  }
  const py::ssize_t channels = features.shape(1);
  const std::vector<py::ssize_t> shape{channels, dims[0], dims[1], dims[2]};
  FloatArray dense = output_array(out, shape, shape_string(shape) + " = (C, D, H, W)");
  const float* host_features = features.data();
  float* host_dense = dense.mutable_data();
  const size_t dense_size = static_cast<size_t>(dense.size());
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> df(q, host_features, static_cast<size_t>(n * channels));
    const DeviceInput<int32_t> dc(q, c, 4 * static_cast<size_t>(n));
    DeviceOutput<float> dout(q, host_dense, dense_size);
    v2x::sparse_to_dense(q, df.get(), dc.get(), static_cast<size_t>(n),
                         static_cast<int32_t>(channels), dims, dout.get());
    dout.finish();
  }
  return dense;
}

py::tuple centerhead_decode(Backend& be, const py::handle& heatmap_obj, const py::handle& reg_obj,
                            const py::handle& height_obj, const py::handle& dim_obj,
                            const py::handle& rot_obj, const py::object& vel_obj,
                            const std::vector<double>& pc_range,
                            const std::vector<double>& voxel_size, double out_size_factor,
                            const std::vector<double>& post_center_range, double score_threshold,
                            int32_t max_num, int32_t pool_size, bool apply_sigmoid,
                            int32_t label_offset) {
  FloatArray heatmap = as_array<float>(heatmap_obj, "heatmap", 3, {-1, -1, -1}, "(K, nx, ny)");
  const py::ssize_t h = heatmap.shape(1), w = heatmap.shape(2);
  FloatArray reg = as_array<float>(reg_obj, "reg", 3, {2, h, w}, "(2, nx, ny)");
  FloatArray height = as_array<float>(height_obj, "height", 3, {1, h, w}, "(1, nx, ny)");
  FloatArray dim = as_array<float>(dim_obj, "dim", 3, {3, h, w}, "(3, nx, ny)");
  FloatArray rot = as_array<float>(rot_obj, "rot", 3, {2, h, w}, "(2, nx, ny) as (sin, cos)");
  std::optional<FloatArray> vel;
  if (!vel_obj.is_none()) vel = as_array<float>(vel_obj, "vel", 3, {2, h, w}, "(2, nx, ny)");
  const std::vector<float> pr = floats(pc_range, "pc_range", 6);
  const std::vector<float> vs = floats(voxel_size, "voxel_size", 3);
  const std::vector<float> pcr = floats(post_center_range, "post_center_range", 6);
  require_positive(vs, 0, 3, "voxel_size");
  if (!(out_size_factor > 0.0)) fail("out_size_factor: must be > 0");
  if (max_num <= 0) fail("max_num: must be > 0");
  if (pool_size <= 0 || pool_size % 2 == 0) fail("pool_size: must be odd and > 0");
  if (!std::isfinite(score_threshold)) fail("score_threshold: must be finite");
  v2x::CenterHeadDecodeParams p{};
  p.pc_min[0] = pr[0];
  p.pc_min[1] = pr[1];
  // One head cell in metres, multiplied in double as the Python side computes it.
  p.cell_size[0] = static_cast<float>(voxel_size[0] * out_size_factor);
  p.cell_size[1] = static_cast<float>(voxel_size[1] * out_size_factor);
  p.score_threshold = static_cast<float>(score_threshold);
  for (int j = 0; j < 6; ++j) p.center_range[j] = pcr[j];
  p.nx = static_cast<int32_t>(h);
  p.ny = static_cast<int32_t>(w);
  p.num_classes = static_cast<int32_t>(heatmap.shape(0));
  p.pool_size = pool_size;
  p.has_velocity = vel ? 1 : 0;
  const size_t plane = static_cast<size_t>(h) * static_cast<size_t>(w);
  const float* host_maps[6] = {heatmap.data(), reg.data(), height.data(), dim.data(), rot.data(),
                               vel ? vel->data() : nullptr};
  const size_t map_sizes[6] = {static_cast<size_t>(heatmap.size()), 2 * plane, plane, 3 * plane,
                               2 * plane, 2 * plane};
  sycl::queue& q = be.queue();
  std::optional<DeviceInput<float>> device_maps[6];
  std::unique_ptr<v2x::CenterHeadDecode> dec;
  {
    py::gil_scoped_release release;
    for (int i = 0; i < 6; ++i) device_maps[i].emplace(q, host_maps[i], map_sizes[i]);
    const v2x::CenterHeadMaps maps{device_maps[0]->get(), device_maps[1]->get(),
                                   device_maps[2]->get(), device_maps[3]->get(),
                                   device_maps[4]->get(), device_maps[5]->get()};
    dec = std::make_unique<v2x::CenterHeadDecode>(q, maps, p, apply_sigmoid, max_num);
  }
  const py::ssize_t n = static_cast<py::ssize_t>(dec->num_boxes());
  FloatArray boxes({n, static_cast<py::ssize_t>(dec->box_dim())});
  FloatArray scores({n});
  IntArray labels({n});
  float* host_boxes = boxes.mutable_data();
  float* host_scores = scores.mutable_data();
  int32_t* host_labels = labels.mutable_data();
  {
    py::gil_scoped_release release;
    DeviceOutput<float> db(q, host_boxes, static_cast<size_t>(n) * dec->box_dim());
    DeviceOutput<float> ds(q, host_scores, static_cast<size_t>(n));
    DeviceOutput<int32_t> dl(q, host_labels, static_cast<size_t>(n));
    dec->fill(db.get(), ds.get(), dl.get(), label_offset);
    db.finish();
    ds.finish();
    dl.finish();
  }
  return py::make_tuple(boxes, scores, labels);
}

struct NmsInputs {
  FloatArray boxes;
  FloatArray scores;
  IntArray labels;
  int32_t max_label;
};

NmsInputs nms_inputs(const py::handle& boxes_obj, const py::handle& scores_obj,
                     const py::handle& labels_obj) {
  FloatArray boxes = as_array<float>(boxes_obj, "boxes", 2, {-1, -1}, "(N, 7+) as (x, y, z, dx, dy, dz, yaw, ...)");
  if (boxes.shape(1) < 7) fail("boxes: expected shape (N, 7+), got " + shape_text(boxes));
  const py::ssize_t n = boxes.shape(0);
  FloatArray scores = as_array<float>(scores_obj, "scores", 1, {n}, "(N,)");
  IntArray labels = as_array<int32_t>(labels_obj, "labels", 1, {n}, "(N,)");
  const float* b = boxes.data();
  const float* s = scores.data();
  const int32_t* l = labels.data();
  int32_t max_label = 0;
  for (py::ssize_t i = 0; i < n; ++i) {
    for (py::ssize_t d = 0; d < 7; ++d) {
      if (!std::isfinite(b[i * boxes.shape(1) + d])) fail("boxes: row " + std::to_string(i) + " is not finite");
    }
    if (!std::isfinite(s[i])) fail("scores: entry " + std::to_string(i) + " is not finite");
    if (l[i] < 0) fail("labels: entry " + std::to_string(i) + " is negative");
    max_label = std::max(max_label, l[i]);
  }
  return NmsInputs{boxes, scores, labels, max_label};
}

IntArray to_index_array(const std::vector<int32_t>& keep) {
  IntArray out({static_cast<py::ssize_t>(keep.size())});
  std::copy(keep.begin(), keep.end(), out.mutable_data());
  return out;
}

// nms_bev on validated inputs; radius: one per class (circle mode) or empty.
IntArray run_nms(Backend& be, const NmsInputs& in, v2x::NmsMode mode, float iou_threshold,
                 const std::vector<float>& radius, int32_t pre_max_size, int32_t post_max_size) {
  const size_t n = static_cast<size_t>(in.boxes.shape(0));
  const int32_t box_dim = static_cast<int32_t>(in.boxes.shape(1));
  const float* host_boxes = in.boxes.data();
  const float* host_scores = in.scores.data();
  const int32_t* host_labels = in.labels.data();
  sycl::queue& q = be.queue();
  std::vector<int32_t> keep;
  {
    py::gil_scoped_release release;
    const DeviceInput<float> db(q, host_boxes, n * static_cast<size_t>(box_dim));
    const DeviceInput<float> ds(q, host_scores, n);
    const DeviceInput<int32_t> dl(q, host_labels, n);
    const DeviceInput<float> dr(q, radius.empty() ? nullptr : radius.data(), radius.size());
    keep = v2x::nms_bev(q, db.get(), box_dim, ds.get(), dl.get(), in.max_label, n, mode,
                        iou_threshold, dr.get(), pre_max_size, post_max_size);
  }
  return to_index_array(keep);
}

IntArray rotated_nms(Backend& be, const py::handle& boxes_obj, const py::handle& scores_obj,
                     const py::handle& labels_obj, double iou_threshold, int32_t pre_max_size,
                     int32_t post_max_size) {
  NmsInputs in = nms_inputs(boxes_obj, scores_obj, labels_obj);
  if (!(iou_threshold >= 0.0 && iou_threshold <= 1.0)) fail("iou_threshold: must lie in [0, 1]");
  if (pre_max_size <= 0) fail("pre_max_size: must be > 0");
  if (post_max_size <= 0) fail("post_max_size: must be > 0");
  return run_nms(be, in, v2x::NmsMode::kRotatedIou, static_cast<float>(iou_threshold), {},
                 pre_max_size, post_max_size);
}

IntArray circle_nms(Backend& be, const py::handle& boxes_obj, const py::handle& scores_obj,
                    const py::handle& labels_obj, const std::vector<double>& radius,
                    int32_t pre_max_size, int32_t post_max_size) {
  NmsInputs in = nms_inputs(boxes_obj, scores_obj, labels_obj);
  if (pre_max_size <= 0) fail("pre_max_size: must be > 0");
  if (post_max_size <= 0) fail("post_max_size: must be > 0");
  if (in.boxes.shape(0) > 0 && static_cast<size_t>(in.max_label) >= radius.size()) {
    fail("radius: " + std::to_string(radius.size()) + " radii given but labels reach " +
         std::to_string(in.max_label) + " (one radius per class)");
  }
  std::vector<float> r;
  for (double v : radius) {
    if (!(v >= 0.0) || !std::isfinite(v)) fail("radius: every radius must be finite and >= 0");
    r.push_back(static_cast<float>(v));
  }
  return run_nms(be, in, v2x::NmsMode::kCircle, 0.0f, r, pre_max_size, post_max_size);
}

FloatArray bev_iou(Backend& be, const py::handle& a_obj, const py::handle& b_obj) {
  FloatArray a = as_array<float>(a_obj, "boxes_a", 2, {-1, -1}, "(N, 7+)");
  if (a.shape(1) < 7) fail("boxes_a: expected shape (N, 7+), got " + shape_text(a));
  FloatArray b = as_array<float>(b_obj, "boxes_b", 2, {a.shape(0), a.shape(1)}, "the shape of boxes_a");
  FloatArray out({a.shape(0)});
  const size_t n = static_cast<size_t>(a.shape(0));
  const int32_t box_dim = static_cast<int32_t>(a.shape(1));
  const float* host_a = a.data();
  const float* host_b = b.data();
  float* host_out = out.mutable_data();
  sycl::queue& q = be.queue();
  {
    py::gil_scoped_release release;
    const DeviceInput<float> da(q, host_a, n * static_cast<size_t>(box_dim));
    const DeviceInput<float> db(q, host_b, n * static_cast<size_t>(box_dim));
    DeviceOutput<float> dout(q, host_out, n);
    v2x::bev_iou_pairs(q, da.get(), db.get(), box_dim, n, dout.get());
    dout.finish();
  }
  return out;
}

// The kernels of one backend as Python callables.
struct KernelsHandle {
  std::shared_ptr<Backend> backend;
  std::optional<std::string> fallback_reason;
};

// Kernel function F(Backend&, A...) as a method of a kernels object and, in _core, as a
// module-level function on the host backend.
template <auto F>
struct Bound;
template <typename R, typename... A, R (*F)(Backend&, A...)>
struct Bound<F> {
  static R method(KernelsHandle& self, A... args) {
    return F(*self.backend, std::forward<A>(args)...);
  }
#if !defined(V2X_SYCL_RTC)
  static R function(A... args) { return F(*Backend::instance(), std::forward<A>(args)...); }
#endif
};

#if !defined(V2X_SYCL_RTC)
struct FunctionRegistrar {
  py::module_& m;
  template <auto F, typename... Extra>
  void def(const char* name, const Extra&... extra) {
    m.def(name, &Bound<F>::function, extra...);
  }
};
#endif

template <typename Class>
struct MethodRegistrar {
  Class& cls;
  template <auto F, typename... Extra>
  void def(const char* name, const Extra&... extra) {
    cls.def(name, &Bound<F>::method, extra...);
  }
};

void define_rulebook(py::module_& m) {
  py::class_<PyRulebook>(m, "SparseConvRulebook",
                         "Output sites of one sparse convolution and the input row each output "
                         "reads through each kernel offset (k = (kz * kh + ky) * kw + kx).")
      .def_property_readonly("out_coors", [](const PyRulebook& r) {
        return copy_out(r, r.rulebook->out_coors(),
                        {static_cast<py::ssize_t>(r.rulebook->num_out()), 4});
      }, "(M, 4) int32 (b, z, y, x): SubM: the input coors; else sorted by (b, z, y, x)")
      .def_property_readonly("neighbors", [](const PyRulebook& r) {
        return copy_out(r, r.rulebook->neighbors(),
                        {static_cast<py::ssize_t>(r.rulebook->num_out()),
                         static_cast<py::ssize_t>(r.rulebook->geometry().kernel_volume)});
      }, "(M, kernel volume) int32: input row read by output m through offset k, or -1")
      .def_property_readonly("num_in", [](const PyRulebook& r) { return r.rulebook->num_in(); })
      .def_property_readonly("num_out", [](const PyRulebook& r) { return r.rulebook->num_out(); })
      .def_property_readonly("out_shape", [](const PyRulebook& r) {
        const v2x::ConvGeometry& g = r.rulebook->geometry();
        return py::make_tuple(g.out_dims[0], g.out_dims[1], g.out_dims[2]);
      }, "(D, H, W) of the output grid")
      .def_property_readonly("subm", [](const PyRulebook& r) { return r.rulebook->subm(); })
      .def_property_readonly("pair_counts", [](const PyRulebook& r) {
        const std::vector<int32_t>& off = r.rulebook->pair_offsets();
        std::vector<int32_t> counts;
        for (size_t k = 0; k + 1 < off.size(); ++k) counts.push_back(off[k + 1] - off[k]);
        return counts;
      }, "number of (input, output) pairs per kernel offset");
}

// Every kernel, with its argument names and documentation, registered through r.
template <typename Registrar>
void define_kernels(Registrar& r) {
  r.template def<&voxelize_hard>("voxelize_hard", py::arg("points"), py::arg("voxel_size"),
      py::arg("pc_range"), py::arg("max_points"), py::arg("max_voxels"),
      py::arg("batch_index") = 0,
      R"doc(Hard voxelization (Pipeline A), the result of mmcv's hard_voxelize on the same input.

points: (N, C >= 3) float32, x, y, z first. voxel_size: (3,) x, y, z. pc_range: (6,)
[x0, y0, z0, x1, y1, z1]. Cell = floor((p - min) / size) in float32, kept when inside the grid
of round((max - min) / size) cells. Voxels are numbered in order of their first point; only the
first max_voxels are kept, each with its first max_points points in input order. Points with any
non-finite feature are dropped and counted.

Returns (voxels (V, max_points, C) float32 zero-padded, coors (V, 4) int32 as
(batch_index, x, y, z), num_points (V,) int32, VoxelizeStats).)doc");

  r.template def<&voxelize_dynamic>("voxelize_dynamic", py::arg("points"), py::arg("voxel_size"),
      py::arg("pc_range"), py::arg("batch_index") = 0,
      R"doc(Dynamic voxelization with mean features (Pipeline B): every occupied voxel, no caps.

points: (N, C >= 3) float32. voxel_size, pc_range and the cell rule as voxelize_hard. Voxels are
ordered by (z, y, x) (lexicographic coordinate order, as torch.unique gives); each feature is
the float32 sum of its points' features in input order divided by their count.

Returns (features (V, C) float32, coors (V, 4) int32 as (batch_index, z, y, x),
num_points (V,) int32, VoxelizeStats).)doc");

  r.template def<&pillar_scatter>("pillar_scatter", py::arg("features"), py::arg("coors"), py::arg("nx"),
      py::arg("ny"), py::arg("out") = py::none(),
      R"doc(PointPillarsScatter: pillar features onto the dense BEV canvas of one frame.

features: (V, C) float32. coors: (V, 4) int32 as (0, x, y, z) with 0 <= x < nx, 0 <= y < ny
(z is ignored). Returns canvas (C, nx, ny) float32 (BEVFusion's BEV layout, rows along x, as
the models of v2xfusion_tools), zero where no pillar lies; if two pillars share a cell the later
one wins. out: an existing (C, nx, ny) float32 array to write instead of a new one.)doc");

  r.template def<&frustum_points>("frustum_points", py::arg("cam_to_lidar"), py::arg("intrinsics"),
      py::arg("img_aug"), py::arg("depths"), py::arg("image_size"), py::arg("feature_size"),
      R"doc(LiDAR-frame points of an LSS depth frustum (input of bev_pool_geometry).

cam_to_lidar: (4, 4) float32 camera -> LiDAR. intrinsics: (3, 3) float32. img_aug: (4, 4) float32
image resize / crop applied after projection (identity when none). depths: (D,) float32 metric
depth of each bin. image_size: (W, H) of the network input; feature_size: (fW, fH).
Pixel (u, v) = (w * (W - 1) / (fW - 1), h * (H - 1) / (fH - 1)), as BEVFusion's frustum.
Returns points (D, fH, fW, 3) float32.)doc");

  r.template def<&bev_pool_geometry>("bev_pool_geometry", py::arg("points"), py::arg("xbound"),
      py::arg("ybound"), py::arg("zbound"),
      R"doc(BEVPool-v2 geometry of a frustum (guide §5.2.3): sorted indices and intervals.

points: (D, fH, fW, 3) or (P, 3) float32 LiDAR-frame frustum points, P = D * fH * fW, point
i = (d * fH + h) * fW + w. xbound / ybound / zbound: [lower, upper, step]; BEV cell =
floor((p - lower) / step) per axis, rank = (z * nx + x) * ny + y (BEVFusion's layout).
Returns (indices (P,) int32, intervals (K + 1, 3) int32):
  indices: a permutation of 0..P-1: frustum points inside the grid sorted by rank (equal ranks by
    index), then the points outside the grid by index;
  intervals: rows (start, end, bev_rank), one per occupied cell in ascending rank, indices[start:
    end] its points; the last row is the sentinel (P_inside, P, -1).)doc");

  r.template def<&bev_pool>("bev_pool", py::arg("depth"), py::arg("context"), py::arg("indices"),
      py::arg("intervals"), py::arg("xbound"), py::arg("ybound"), py::arg("zbound"),
      py::arg("out") = py::none(),
      R"doc(BEVPool-v2: camera features pooled into the BEV grid through a precomputed geometry.

depth: (D, fH, fW) float32 depth distribution. context: (fH, fW, C) float32. indices / intervals:
from bev_pool_geometry (the sentinel row, rank -1, is skipped). Grid from xbound / ybound /
zbound. out[z * C + c, x, y] = sum over the interval of cell (x, y, z) of depth[i] * context[i %
(fH * fW), c], summed in index order. Returns (nz * C, nx, ny) float32 (rows along x), written
into `out` when an existing array of that shape is given.)doc");

  r.template def<&sparse_conv_rulebook>("sparse_conv_rulebook", py::arg("coors"), py::arg("spatial_shape"),
      py::arg("kernel_size") = 3, py::arg("stride") = 1, py::arg("padding") = 0,
      py::arg("dilation") = 1, py::arg("subm") = false,
      R"doc(Rulebook of a SubMConv3d (subm=True) or SparseConv3d, spconv 2.x semantics.

coors: (N, 4) int32 (b, z, y, x) inside spatial_shape (D, H, W). kernel_size, stride, padding,
dilation: an int or (z, y, x). Output o reads input o * stride - padding + k * dilation.
SubM: stride 1, odd kernel, padding = kernel_size // 2 * dilation; outputs are the inputs.
Otherwise out_shape = (in + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1 and the
outputs are every reachable site, ordered by (b, z, y, x). Returns SparseConvRulebook.)doc");

  r.template def<&sparse_conv>("sparse_conv", py::arg("features"), py::arg("rulebook"), py::arg("weight"),
      py::arg("bias") = py::none(), py::arg("relu") = false,
      R"doc(Sparse convolution by gather-GEMM-scatter over a rulebook.

features: (N, Cin) float32, rows matching the rulebook's input coors. weight: (Cout, kd, kh, kw,
Cin) float32, spconv 2.x layout. bias: (Cout,) float32 (batch norm folded in) or None. relu:
apply max(x, 0). Each output sums its kernel offsets in ascending k, then adds the bias.
Returns (M, Cout) float32 for the rulebook's out_coors.)doc");

  r.template def<&sparse_to_dense>("sparse_to_dense", py::arg("features"), py::arg("coors"),
      py::arg("spatial_shape"), py::arg("out") = py::none(),
      R"doc(SparseToDense of one frame: features (N, C) float32 at coors (N, 4) int32 (0, z, y, x)
into (C, D, H, W) float32, zero elsewhere; of duplicate sites the later row wins. out: an
existing (C, D, H, W) float32 array to write instead of a new one.)doc");

  r.template def<&centerhead_decode>("centerhead_decode", py::arg("heatmap"), py::arg("reg"),
      py::arg("height"), py::arg("dim"), py::arg("rot"), py::arg("vel") = py::none(),
      py::kw_only(), py::arg("pc_range"), py::arg("voxel_size"), py::arg("out_size_factor"),
      py::arg("post_center_range"), py::arg("score_threshold"), py::arg("max_num") = 500,
      py::arg("pool_size") = 3, py::arg("apply_sigmoid") = true, py::arg("label_offset") = 0,
      R"doc(CenterHead decoding of one task into boxes (design.md §2 layout).

heatmap: (K, nx, ny) float32 logits (scores if apply_sigmoid is False), rows along x (BEVFusion's
BEV layout). reg (2, nx, ny), height (1, nx, ny) box-centre z, dim (3, nx, ny) log sizes, rot (2,
nx, ny) as (sin, cos), vel (2, nx, ny) or None; all float32. A cell is a candidate when its score
> score_threshold and no cell of its class within the pool_size window scores higher (pool_size 1:
every cell); the best max_num by score (ties: lower (class, ix, iy) index first) are decoded:
  x = (ix + reg[0]) * cell_x + pc_range[0], cell_x = voxel_size[0] * out_size_factor (y likewise),
  z = height, (dx, dy, dz) = exp(dim), yaw = atan2(sin, cos) wrapped to [-pi, pi),
and kept when (x, y, z) lies in post_center_range (inclusive).
Returns (boxes (n, 7) or (n, 9) with vx, vy, scores (n,) float32 descending, labels (n,) int32 =
class + label_offset).)doc");

  r.template def<&rotated_nms>("rotated_nms", py::arg("boxes"), py::arg("scores"), py::arg("labels"),
      py::arg("iou_threshold"), py::arg("pre_max_size"), py::arg("post_max_size"),
      R"doc(Per-class rotated NMS in bird's-eye view.

boxes: (N, 7+) float32 (x, y, z, dx, dy, dz, yaw, ...); scores: (N,) float32; labels: (N,) int32
>= 0. Per class: descending score (ties: lower index), the first pre_max_size, a box suppresses
later ones whose BEV IoU with it is > iou_threshold, at most post_max_size kept. Returns the kept
indices (n,) int32 of all classes, descending score (ties: lower index).)doc");

  r.template def<&circle_nms>("circle_nms", py::arg("boxes"), py::arg("scores"), py::arg("labels"),
      py::arg("radius"), py::arg("pre_max_size"), py::arg("post_max_size"),
      R"doc(Per-class circle NMS (CenterPoint): as rotated_nms, but a box suppresses later boxes
of its class whose centre lies within radius[label] metres (distance <= radius).
radius: one value per class. Returns the kept indices (n,) int32, descending score.)doc");

  r.template def<&bev_iou>("bev_iou", py::arg("boxes_a"), py::arg("boxes_b"),
      R"doc(BEV IoU of box pairs, the measure rotated_nms uses: boxes_a, boxes_b (N, 7+) float32
(x, y, z, dx, dy, dz, yaw, ...). Returns (N,) float32, IoU of boxes_a[i] and boxes_b[i].)doc");
}

// The properties both kernels classes share.
template <typename Class>
void define_backend_properties(Class& cls) {
  cls.def_property_readonly("name", [](const KernelsHandle& k) { return k.backend->name(); },
                            "the backend: 'host' or 'sycl'")
      .def_property_readonly("device", [](const KernelsHandle& k) { return k.backend->device(); },
                             "what the kernels run on, in words")
      .def_property_readonly(
          "compile_seconds", [](const KernelsHandle& k) { return k.backend->compile_seconds(); },
          "seconds this process spent compiling the kernels for the device (0 on the host "
          "backend); paid once per process and device, by the first kernels object on it");
  MethodRegistrar<Class> methods{cls};
  define_kernels(methods);
}

}  // namespace
}  // namespace V2X_BINDINGS

#if defined(V2X_SYCL_RTC)

PYBIND11_MODULE(_sycl, m) {
  using namespace V2X_BINDINGS;
  m.doc() =
      "The sycl backend of v2xfusion_kernels (design.md §4): the kernels of _core, their bodies "
      "compiled at run time by the DPC++ kernel compiler for a SYCL device (OpenCL CPU, Level Zero "
      "GPU, ...) and run there, with the same arguments, checks and results.";
  // VoxelizeStats is _core's class: both modules return the one Python type.
  py::module_::import("v2xfusion_kernels._core");
  py::register_exception<v2x::rtc::DeviceNotFound>(m, "DeviceNotFoundError", PyExc_RuntimeError);

  define_rulebook(m);
  py::class_<KernelsHandle> cls(m, "SyclKernels",
                                "The kernels on one SYCL device, compiled for it at run time. "
                                "device: a selector 'backend:type' or 'backend:index' "
                                "(opencl:cpu, level_zero:gpu, opencl:0, *:gpu); the first "
                                "matching device is used.");
  cls.def(py::init([](const std::string& device) {
            std::shared_ptr<Backend> backend;
            {
              py::gil_scoped_release release;
              backend = std::make_shared<Backend>(device);
            }
            return KernelsHandle{backend, std::nullopt};
          }),
          py::arg("device"))
      .def_property_readonly("selector",
                             [](const KernelsHandle& k) { return k.backend->selector(); },
                             "the selector the device was picked by")
      .def("__repr__", [](const KernelsHandle& k) {
        return "SyclKernels(device='" + k.backend->device() + "')";
      });
  define_backend_properties(cls);

  m.def("devices", []() {
    std::vector<py::tuple> out;
    for (const auto& d : v2x::rtc::list_devices()) {
      out.push_back(py::make_tuple(d.selector, d.type, d.name, d.platform));
    }
    return out;
  }, "Every SYCL device the runtime finds: (selector 'backend:index', type, name, platform).");
  m.def("kernel_sources", []() {
    py::dict out;
    out[py::str(v2x::rtc::kKernelSource.name)] = py::str(v2x::rtc::kKernelSource.text);
    for (size_t i = 0; i < v2x::rtc::kNumIncludeFiles; ++i) {
      out[py::str(v2x::rtc::kIncludeFiles[i].name)] = py::str(v2x::rtc::kIncludeFiles[i].text);
    }
    return out;
  }, "The source texts handed to the DPC++ kernel compiler, by file name: the kernel wrappers "
      "(device_kernels.cpp) and their include files, embedded at build time from kernels/src.");
  m.def("compile_options", &v2x::rtc::compile_options,
        "The options the DPC++ kernel compiler gets.");
}

#else

PYBIND11_MODULE(_core, m) {
  using namespace V2X_BINDINGS;
  m.doc() =
      "v2xfusion kernels: voxelization, PointPillarsScatter, BEVPool-v2 (+ geometry), sparse "
      "convolution, CenterHead decoding and BEV NMS, written once as SYCL-2020 style kernels "
      "(design.md §4). Arrays are numpy float32 / int32, C-contiguous; results are identical for "
      "any thread count.";

  m.attr("BACKEND") = V2X_KERNELS_BACKEND_NAME;

  m.def("set_num_threads", [](int n) {
#if !defined(V2X_SYCL_REAL)
    if (n < 0) fail("n: must be >= 0 (0 = OpenMP default)");
    v2x_host_set_num_threads(n);
#endif
  }, py::arg("n"),
        "Threads the host backend's kernels use: n > 0 exactly n; 0 (the default) OpenMP's "
        "default (OMP_NUM_THREADS or all cores), reduced by OpenMP when the machine is busy. "
        "Process-wide; results do not depend on it. No effect on the sycl backend.");
  m.def("get_num_threads", []() {
#if !defined(V2X_SYCL_REAL)
    return v2x_host_num_threads();
#else
    return 0;
#endif
  }, "Threads the host backend's kernels use now (0 on the sycl backend).");

  py::class_<v2x::VoxelizeStats>(m, "VoxelizeStats",
                                 "What a voxelization did with its input points; every dropped "
                                 "point is counted in exactly one num_* field.")
      .def_readonly("num_points", &v2x::VoxelizeStats::num_points, "input rows")
      .def_readonly("num_nonfinite", &v2x::VoxelizeStats::num_nonfinite,
                    "dropped: a NaN / inf feature")
      .def_readonly("num_out_of_range", &v2x::VoxelizeStats::num_out_of_range,
                    "dropped: outside pc_range")
      .def_readonly("num_voxel_overflow", &v2x::VoxelizeStats::num_voxel_overflow,
                    "dropped: their voxel came after max_voxels voxels")
      .def_readonly("num_point_overflow", &v2x::VoxelizeStats::num_point_overflow,
                    "dropped: their voxel already held max_points points")
      .def_readonly("num_voxels_dropped", &v2x::VoxelizeStats::num_voxels_dropped,
                    "voxels beyond max_voxels (hard voxelization)")
      .def("__repr__", [](const v2x::VoxelizeStats& s) {
        return "VoxelizeStats(num_points=" + std::to_string(s.num_points) +
               ", num_nonfinite=" + std::to_string(s.num_nonfinite) +
               ", num_out_of_range=" + std::to_string(s.num_out_of_range) +
               ", num_voxel_overflow=" + std::to_string(s.num_voxel_overflow) +
               ", num_point_overflow=" + std::to_string(s.num_point_overflow) +
               ", num_voxels_dropped=" + std::to_string(s.num_voxels_dropped) + ")";
      });

  define_rulebook(m);
  FunctionRegistrar functions{m};
  define_kernels(functions);

  py::class_<KernelsHandle> cls(m, "HostKernels",
                                "The kernels on the host backend (OpenMP on this CPU): the "
                                "module-level functions as methods, beside SyclKernels. "
                                "fallback_reason: why a backend('auto') choice fell back to "
                                "host, or None.");
  cls.def(py::init([](std::optional<std::string> fallback_reason) {
            return KernelsHandle{Backend::instance(), std::move(fallback_reason)};
          }),
          py::arg("fallback_reason") = py::none())
      .def_property_readonly("fallback_reason",
                             [](const KernelsHandle& k) { return k.fallback_reason; },
                             "why backend('auto') fell back to host, or None")
      .def("__repr__", [](const KernelsHandle&) { return std::string("HostKernels()"); });
  define_backend_properties(cls);
}

#endif
