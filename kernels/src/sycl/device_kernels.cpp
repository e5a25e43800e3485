// The free-function SYCL kernels of the sycl backend (design.md §4): one thin wrapper per body of
// src/bodies, compiled at run time by the DPC++ kernel compiler of the intel-sycl-rt wheel
// (src/sycl/runtime.cpp hands it this file and, as include files, the very body headers the host
// build compiles) and launched by name from the wrappers' V2X_FOR / V2X_SINGLE submissions
// (include/v2x_launch.hpp). Not compiled by CMake.
//
// Kernel v2x_<body> takes (size_t items, the body's parameters) and runs body(i, ...) for
// work-items i < items of a 1-D nd_range (rounded up to whole work-groups); v2x_<body> of a
// single-task body takes the body's parameters. A static_assert holds each wrapper's parameters
// to its body's, so the launch, which converts its arguments to the body's parameter types, always
// matches the kernel.
#define V2X_SYCL_KERNEL_COMPILER

#include <sycl/ext/oneapi/free_function_queries.hpp>
#include <sycl/ext/oneapi/kernel_properties/properties.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "bevpool_body.hpp"
#include "centerhead_decode_body.hpp"
#include "coord_hash_body.hpp"
#include "pillar_scatter_body.hpp"
#include "radix_sort_body.hpp"
#include "rotated_nms_body.hpp"
#include "scan_body.hpp"
#include "sparse_conv_body.hpp"
#include "voxelize_body.hpp"

namespace v2x_device {

template <typename Kernel, typename Body>
struct same_parameters : std::false_type {};
template <typename... P>
struct same_parameters<void (*)(P...), void (*)(P...)> : std::true_type {};

}  // namespace v2x_device

#define V2X_UNPAREN(...) __VA_ARGS__

// extern "C": the kernel compiler finds a kernel by its unmangled name only then.
#define V2X_FREE_KERNEL            \
  extern "C" SYCL_EXT_ONEAPI_FUNCTION_PROPERTY( \
      (sycl::ext::oneapi::experimental::nd_range_kernel<1>))

// Kernel v2x_<name> over work-items of body (a parenthesized, possibly templated, body name).
#define V2X_KERNEL_FOR_T(name, body, params, args)                                              \
  V2X_FREE_KERNEL void v2x_##name(size_t v2x_items, V2X_UNPAREN params) {                       \
    static_assert(v2x_device::same_parameters<decltype(&v2x_##name),                            \
                                              decltype(&v2x::V2X_UNPAREN body)>::value,         \
                  "kernel v2x_" #name ": parameters differ from its body's");                   \
    const size_t i = sycl::ext::oneapi::this_work_item::get_nd_item<1>().get_global_id(0);      \
    if (i < v2x_items) v2x::V2X_UNPAREN body(i, V2X_UNPAREN args);                              \
  }
#define V2X_KERNEL_FOR(body, params, args) V2X_KERNEL_FOR_T(body, (body), params, args)

// Kernel v2x_<body> of a single-task body (launched as one work-item).
#define V2X_KERNEL_SINGLE(body, params, args)                                                   \
  V2X_FREE_KERNEL void v2x_##body(V2X_UNPAREN params) {                                         \
    static_assert(                                                                              \
        v2x_device::same_parameters<decltype(&v2x_##body), decltype(&v2x::body)>::value,        \
        "kernel v2x_" #body ": parameters differ from its body's");                             \
    v2x::body(V2X_UNPAREN args);                                                                \
  }

using v2x::BevGrid;
using v2x::CenterHeadDecodeParams;
using v2x::ConvGeometry;
using v2x::CoordHash;
using v2x::FrustumCamera;
using v2x::NmsSegment;
using v2x::VoxelGrid;

// coord_hash_body.hpp
V2X_KERNEL_FOR(coord_hash_clear_body,
               (int32_t* entries),
               (entries))

// scan_body.hpp
V2X_KERNEL_FOR(scan_block_sum_body,
               (const int32_t* in, size_t n, size_t block, int32_t* sums),
               (in, n, block, sums))
V2X_KERNEL_SINGLE(scan_block_offsets_body,
                  (int32_t* sums, size_t num_blocks),
                  (sums, num_blocks))
V2X_KERNEL_FOR(scan_block_apply_body,
               (const int32_t* in, int32_t* out, size_t n, size_t block, const int32_t* sums),
               (in, out, n, block, sums))

// radix_sort_body.hpp
V2X_KERNEL_FOR(radix_histogram_body,
               (const uint32_t* keys, size_t n, size_t tile, size_t num_tiles, int shift,
                int32_t* hist),
               (keys, n, tile, num_tiles, shift, hist))
V2X_KERNEL_FOR(radix_scatter_body,
               (const uint32_t* keys_in, const int32_t* vals_in, size_t n, size_t tile,
                size_t num_tiles, int shift, int32_t* offsets, uint32_t* keys_out,
                int32_t* vals_out),
               (keys_in, vals_in, n, tile, num_tiles, shift, offsets, keys_out, vals_out))

// voxelize_body.hpp
V2X_KERNEL_FOR(voxel_cell_block_body,
               (const float* points, int num_features, VoxelGrid grid, size_t n, size_t block,
                int32_t* cells, int32_t* flag, int32_t* sums, int32_t* dropped),
               (points, num_features, grid, n, block, cells, flag, sums, dropped))
V2X_KERNEL_FOR(voxel_cell_insert_body,
               (const float* points, int num_features, VoxelGrid grid, CoordHash table,
                int32_t* cells, uint32_t* slots),
               (points, num_features, grid, table, cells, slots))
V2X_KERNEL_FOR(voxel_head_block_body,
               (const int32_t* cells, const uint32_t* slots, const int32_t* hash_entries, size_t n,
                size_t block, int32_t* head, int32_t* sums, int32_t* dropped),
               (cells, slots, hash_entries, n, block, head, sums, dropped))
V2X_KERNEL_SINGLE(voxel_dropped_total_body,
                  (int32_t* dropped, size_t num_blocks),
                  (dropped, num_blocks))
V2X_KERNEL_FOR(voxel_assign_block_body,
               (const int32_t* cells, const uint32_t* slots, const int32_t* hash_entries,
                const int32_t* head_rank, int32_t max_voxels, size_t n, size_t block,
                int32_t* point_voxel, int32_t* flag, int32_t* sums, int32_t* voxel_head),
               (cells, slots, hash_entries, head_rank, max_voxels, n, block, point_voxel, flag,
                sums, voxel_head))
V2X_KERNEL_FOR(voxel_compact_body,
               (const int32_t* point_voxel, const int32_t* position, uint32_t* keys, int32_t* vals),
               (point_voxel, position, keys, vals))
V2X_KERNEL_FOR(voxel_segment_start_body,
               (const uint32_t* sorted_keys, int32_t* start),
               (sorted_keys, start))
V2X_KERNEL_SINGLE(voxel_segment_end_body,
                  (int32_t* start, int32_t num_segments, int32_t num_pairs),
                  (start, num_segments, num_pairs))
V2X_KERNEL_FOR(voxel_point_excess_body,
               (const int32_t* start, int32_t max_points, int32_t* excess),
               (start, max_points, excess))
V2X_KERNEL_FOR(hard_voxel_fill_body,
               (const float* points, int num_features, const int32_t* sorted_points,
                const int32_t* start, const int32_t* voxel_head, const int32_t* cells,
                VoxelGrid grid, int32_t max_points, int32_t batch_index, float* voxels,
                int32_t* coors, int32_t* num_points),
               (points, num_features, sorted_points, start, voxel_head, cells, grid, max_points,
                batch_index, voxels, coors, num_points))
V2X_KERNEL_FOR(voxel_compact_cell_body,
               (const int32_t* cells, const int32_t* position, uint32_t* keys, int32_t* vals),
               (cells, position, keys, vals))
V2X_KERNEL_FOR(voxel_segment_flag_body,
               (const uint32_t* sorted_keys, int32_t* flag),
               (sorted_keys, flag))
V2X_KERNEL_FOR(voxel_segment_index_body,
               (const int32_t* flag, const int32_t* segment, int32_t* start),
               (flag, segment, start))
V2X_KERNEL_FOR(dynamic_voxel_mean_body,
               (const float* points, int num_features, const uint32_t* sorted_cells,
                const int32_t* sorted_points, const int32_t* start, VoxelGrid grid,
                int32_t batch_index, float* features, int32_t* coors, int32_t* num_points),
               (points, num_features, sorted_cells, sorted_points, start, grid, batch_index,
                features, coors, num_points))

// pillar_scatter_body.hpp
V2X_KERNEL_FOR(pillar_claim_body,
               (const int32_t* coors, int32_t ny, int32_t* owner),
               (coors, ny, owner))
V2X_KERNEL_FOR(pillar_write_body,
               (const float* features, int32_t num_channels, const int32_t* coors, int32_t nx,
                int32_t ny, const int32_t* owner, float* canvas),
               (features, num_channels, coors, nx, ny, owner, canvas))

// bevpool_body.hpp
V2X_KERNEL_FOR(frustum_point_body,
               (int32_t feature_w, int32_t feature_h, const float* depths, FrustumCamera cam,
                float* points),
               (feature_w, feature_h, depths, cam, points))
V2X_KERNEL_FOR(bev_rank_body,
               (const float* points, BevGrid grid, uint32_t* keys, int32_t* order),
               (points, grid, keys, order))
V2X_KERNEL_FOR(bev_run_flag_body,
               (const uint32_t* keys, uint32_t outside, int32_t* flag),
               (keys, outside, flag))
V2X_KERNEL_FOR(bev_valid_end_body,
               (const uint32_t* keys, size_t n, uint32_t outside, int32_t* valid_end),
               (keys, n, outside, valid_end))
V2X_KERNEL_FOR(bev_interval_start_body,
               (const uint32_t* keys, const int32_t* flag, const int32_t* run, int32_t* intervals),
               (keys, flag, run, intervals))
V2X_KERNEL_FOR(bev_interval_end_body,
               (size_t num_runs, const int32_t* valid_end, int32_t num_points, int32_t* intervals),
               (num_runs, valid_end, num_points, intervals))
// bev_pool_body<CB>: one kernel per channel block bevpool.cpp submits.
#define V2X_BEV_POOL_KERNEL(CB)                                                                \
  V2X_KERNEL_FOR_T(bev_pool_body_##CB, (bev_pool_body<CB>),                                    \
                   (const float* depth, const float* context, int32_t num_channels,            \
                    size_t feature_hw, const int32_t* indices, const int32_t* intervals,       \
                    size_t plane, float* out),                                                 \
                   (depth, context, num_channels, feature_hw, indices, intervals, plane, out))
V2X_BEV_POOL_KERNEL(16)
V2X_BEV_POOL_KERNEL(8)
V2X_BEV_POOL_KERNEL(4)
V2X_BEV_POOL_KERNEL(1)

// sparse_conv_body.hpp
V2X_KERNEL_FOR(conv_input_insert_body,
               (const int32_t* coors, ConvGeometry g, CoordHash table),
               (coors, g, table))
V2X_KERNEL_FOR(conv_output_candidate_body,
               (const int32_t* coors, ConvGeometry g, CoordHash table),
               (coors, g, table))
V2X_KERNEL_FOR(conv_slot_flag_body,
               (const int32_t* hash_entries, int32_t* flag),
               (hash_entries, flag))
V2X_KERNEL_FOR(conv_slot_compact_body,
               (const int32_t* hash_entries, const int32_t* position, uint32_t* out_keys,
                int32_t* out_slots),
               (hash_entries, position, out_keys, out_slots))
V2X_KERNEL_FOR(conv_output_row_body,
               (const int32_t* sorted_slots, int32_t* hash_entries),
               (sorted_slots, hash_entries))
V2X_KERNEL_FOR(conv_scatter_neighbor_body,
               (const int32_t* coors, ConvGeometry g, const int32_t* out_hash_entries,
                uint32_t out_hash_mask, int32_t* neighbors),
               (coors, g, out_hash_entries, out_hash_mask, neighbors))
V2X_KERNEL_FOR(conv_neighbor_missing_body,
               (int32_t* neighbors),
               (neighbors))
V2X_KERNEL_FOR(conv_output_coord_body,
               (const uint32_t* keys, ConvGeometry g, int32_t* out_coors),
               (keys, g, out_coors))
V2X_KERNEL_FOR(conv_neighbor_body,
               (const int32_t* out_coors, ConvGeometry g, const int32_t* hash_entries,
                uint32_t hash_mask, int32_t* neighbors),
               (out_coors, g, hash_entries, hash_mask, neighbors))
V2X_KERNEL_FOR(conv_pair_flag_body,
               (const int32_t* neighbors, size_t num_out, int32_t kernel_volume, int32_t* flag),
               (neighbors, num_out, kernel_volume, flag))
V2X_KERNEL_FOR(conv_pair_write_body,
               (const int32_t* neighbors, size_t num_out, int32_t kernel_volume,
                const int32_t* position, int32_t* pair_in, int32_t* pair_out),
               (neighbors, num_out, kernel_volume, position, pair_in, pair_out))
V2X_KERNEL_FOR(conv_pack_weight_body,
               (const float* weight, int32_t kernel_volume, int32_t cin, int32_t cout,
                float* packed),
               (weight, kernel_volume, cin, cout, packed))
// conv_gemm_body<RB, CB>: one kernel per tile shape sparse_conv.cpp submits.
#define V2X_CONV_GEMM_KERNEL(RB, CB)                                                           \
  V2X_KERNEL_FOR_T(conv_gemm_body_##RB##_##CB, (conv_gemm_body<RB, CB>),                       \
                   (const float* in, int32_t cin, const float* weight_k, int32_t cout,         \
                    const int32_t* pair_in, const int32_t* pair_out, size_t pair_begin,        \
                    size_t pair_end, float* out),                                              \
                   (in, cin, weight_k, cout, pair_in, pair_out, pair_begin, pair_end, out))
V2X_CONV_GEMM_KERNEL(4, 16)
V2X_CONV_GEMM_KERNEL(4, 8)
V2X_CONV_GEMM_KERNEL(4, 1)
V2X_KERNEL_FOR(conv_bias_relu_body,
               (const float* bias, int32_t cout, int32_t relu, float* out),
               (bias, cout, relu, out))
V2X_KERNEL_FOR(dense_claim_body,
               (const int32_t* coors, int32_t dim_y, int32_t dim_x, int32_t* owner),
               (coors, dim_y, dim_x, owner))
V2X_KERNEL_FOR(dense_write_body,
               (const float* features, int32_t num_channels, const int32_t* coors, int32_t dim_y,
                int32_t dim_x, size_t volume, const int32_t* owner, float* dense),
               (features, num_channels, coors, dim_y, dim_x, volume, owner, dense))

// centerhead_decode_body.hpp
V2X_KERNEL_FOR(heatmap_peak_flag_body,
               (const float* scores, CenterHeadDecodeParams p, int32_t* flag),
               (scores, p, flag))
V2X_KERNEL_FOR(heatmap_sigmoid_body,
               (const float* logits, float* scores),
               (logits, scores))
V2X_KERNEL_FOR(heatmap_candidate_body,
               (const float* scores, const int32_t* flag, const int32_t* position, uint32_t* keys,
                int32_t* vals),
               (scores, flag, position, keys, vals))
V2X_KERNEL_FOR(centerhead_box_body,
               (const int32_t* pixels, const float* scores, const float* reg, const float* height,
                const float* dim, const float* rot, const float* vel, CenterHeadDecodeParams p,
                float* boxes, float* box_scores, int32_t* labels, int32_t* in_range),
               (pixels, scores, reg, height, dim, rot, vel, p, boxes, box_scores, labels, in_range))
V2X_KERNEL_FOR(centerhead_compact_body,
               (const float* boxes, const float* box_scores, const int32_t* labels,
                const int32_t* in_range, const int32_t* position, int32_t box_dim,
                int32_t label_offset, float* out_boxes, float* out_scores, int32_t* out_labels),
               (boxes, box_scores, labels, in_range, position, box_dim, label_offset, out_boxes,
                out_scores, out_labels))

// rotated_nms_body.hpp
V2X_KERNEL_FOR(bev_iou_pair_body,
               (const float* a, const float* b, int32_t box_dim, float* out),
               (a, b, box_dim, out))
V2X_KERNEL_FOR(nms_mask_body,
               (const float* boxes, int32_t box_dim, const int32_t* order,
                const NmsSegment* segments, const int32_t* row_segment, int32_t words,
                int32_t mode, float iou_threshold, const float* radius, uint64_t* mask),
               (boxes, box_dim, order, segments, row_segment, words, mode, iou_threshold, radius,
                mask))
V2X_KERNEL_FOR(nms_sweep_body,
               (const NmsSegment* segments, const int32_t* order, const uint64_t* mask,
                int32_t words, int32_t post_max_size, uint64_t* removed, int32_t* keep),
               (segments, order, mask, words, post_max_size, removed, keep))
V2X_KERNEL_FOR(nms_label_key_body,
               (const int32_t* order, const int32_t* labels, uint32_t* keys),
               (order, labels, keys))
V2X_KERNEL_FOR(nms_score_key_body,
               (const float* scores, uint32_t* keys, int32_t* vals),
               (scores, keys, vals))
V2X_KERNEL_FOR(nms_segment_flag_body,
               (const uint32_t* keys, int32_t* flag),
               (keys, flag))
V2X_KERNEL_FOR(nms_keep_compact_body,
               (const float* scores, const int32_t* keep, const int32_t* position, uint32_t* keys,
                int32_t* vals),
               (scores, keep, position, keys, vals))
