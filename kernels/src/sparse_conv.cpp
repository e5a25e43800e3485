// Sparse convolution: submits the bodies of bodies/sparse_conv_body.hpp.
#include "sparse_conv.hpp"

#include "coord_hash.hpp"
#include "radix_sort.hpp"
#include "scan.hpp"
#include "v2x_launch.hpp"

namespace v2x {

ConvRulebook::ConvRulebook(sycl::queue& q, const int32_t* coors, size_t num_in,
                           int32_t batch_size, ConvGeometry g, bool subm)
    : geometry_{g},
      subm_{subm},
      num_in_{num_in},
      out_coors_(q, 0),
      neighbors_(q, 0),
      pair_in_(q, 0),
      pair_out_(q, 0),
      pair_offsets_(static_cast<size_t>(g.kernel_volume) + 1, 0) {
  const size_t kvol = static_cast<size_t>(g.kernel_volume);
  if (num_in == 0) return;
  if (subm) {
    // Outputs are the inputs; each finds its neighbours in a hash of the input sites.
    CoordHashTable in_hash(q, num_in);
    const CoordHash ih = in_hash.view();
    V2X_FOR(q, num_in, conv_input_insert_body, coors, g, ih);
    num_out_ = num_in;
    out_coors_ = UsmArray<int32_t>(q, 4 * num_in);
    q.memcpy(out_coors_.data(), coors, 4 * num_in * sizeof(int32_t));
    neighbors_ = UsmArray<int32_t>(q, num_in * kvol);
    int32_t* nb = neighbors_.data();
    const int32_t* oc = out_coors_.data();
    const int32_t* he = in_hash.entries();
    const uint32_t hmask = in_hash.mask();
    V2X_FOR(q, num_in, conv_neighbor_body, oc, g, he, hmask, nb);
  } else {
    // Each input reaches at most prod(ceil(k / s)) outputs; the table holds that many keys even
    // in the worst case (load factor 1), and real clouds, whose inputs share outputs, fill a
    // fraction of it.
    size_t reach = 1;
    for (int d = 0; d < 3; ++d) {
      reach *= static_cast<size_t>((g.kernel[d] + g.stride[d] - 1) / g.stride[d]);
    }
    CoordHashTable out_hash(q, (num_in * reach + 1) / 2);
    const CoordHash oh = out_hash.view();
    V2X_FOR(q, num_in, conv_output_candidate_body, coors, g, oh);
    const size_t cap = out_hash.capacity();
    UsmArray<int32_t> position(q, cap);
    int32_t* pos = position.data();
    int32_t* oentries = oh.entries;
    V2X_FOR(q, cap, conv_slot_flag_body, oentries, pos);
    num_out_ = static_cast<size_t>(exclusive_scan(q, pos, pos, cap));
    UsmArray<uint32_t> keys(q, num_out_);
    UsmArray<int32_t> slots(q, num_out_);
    uint32_t* k = keys.data();
    int32_t* sl = slots.data();
    V2X_FOR(q, cap, conv_slot_compact_body, oentries, pos, k, sl);
    const uint64_t max_key = static_cast<uint64_t>(batch_size) * g.out_dims[0] * g.out_dims[1] *
                                 g.out_dims[2] - 1;
    radix_sort_pairs(q, k, sl, num_out_, bits_for(max_key));
    out_coors_ = UsmArray<int32_t>(q, 4 * num_out_);
    int32_t* oc = out_coors_.data();
    V2X_FOR(q, num_out_, conv_output_coord_body, k, g, oc);
    V2X_FOR(q, num_out_, conv_output_row_body, sl, oentries);
    // Pairs come from the inputs' side: each input finds the rows of the outputs it reaches.
    neighbors_ = UsmArray<int32_t>(q, num_out_ * kvol);
    int32_t* nb = neighbors_.data();
    const uint32_t omask = out_hash.mask();
    q.fill(nb, kNoValue, num_out_ * kvol);
    V2X_FOR(q, num_in, conv_scatter_neighbor_body, coors, g, oentries, omask, nb);
    V2X_FOR(q, num_out_ * kvol, conv_neighbor_missing_body, nb);
  }

  const size_t m = num_out_;
  int32_t* nb = neighbors_.data();
  UsmArray<int32_t> flags(q, m * kvol);
  UsmArray<int32_t> position(q, m * kvol);
  int32_t* flag = flags.data();
  int32_t* pos = position.data();
  const int32_t kv = g.kernel_volume;
  V2X_FOR(q, m, conv_pair_flag_body, nb, m, kv, flag);
  const int32_t pairs = exclusive_scan(q, flag, pos, m * kvol);
  for (size_t k = 0; k < kvol; ++k) pair_offsets_[k] = position.read(q, k * m);
  pair_offsets_[kvol] = pairs;
  pair_in_ = UsmArray<int32_t>(q, static_cast<size_t>(pairs));
  pair_out_ = UsmArray<int32_t>(q, static_cast<size_t>(pairs));
  int32_t* pin = pair_in_.data();
  int32_t* pout = pair_out_.data();
  V2X_FOR(q, m, conv_pair_write_body, nb, m, kv, pos, pin, pout);
  q.wait();
}

namespace {

template <int RB, int CB>
void submit_gemm(sycl::queue& q, const float* in, int32_t cin, const float* weight_k,
                 int32_t cout, const int32_t* pair_in, const int32_t* pair_out, size_t begin,
                 size_t end, float* out) {
  const size_t row_blocks = (end - begin + RB - 1) / RB;
  const size_t work = row_blocks * static_cast<size_t>(cout / CB);
  V2X_FOR_T(q, work, conv_gemm_body, (RB, CB), in, cin, weight_k, cout, pair_in, pair_out, begin,
            end, out);
}

}  // namespace

void sparse_conv(sycl::queue& q, const ConvRulebook& rb, const float* in, int32_t cin,
                 const float* weight, const float* bias, int32_t cout, bool relu, float* out) {
  const size_t m = rb.num_out();
  const int32_t kvol = rb.geometry().kernel_volume;
  q.fill(out, 0.0f, m * static_cast<size_t>(cout));
  const size_t wsize = static_cast<size_t>(kvol) * cin * cout;
  UsmArray<float> packed_buf(q, wsize);
  float* packed = packed_buf.data();
  V2X_FOR(q, wsize, conv_pack_weight_body, weight, kvol, cin, cout, packed);
  const std::vector<int32_t>& offsets = rb.pair_offsets();
  for (int32_t k = 0; k < kvol; ++k) {
    const size_t begin = static_cast<size_t>(offsets[k]);
    const size_t end = static_cast<size_t>(offsets[k + 1]);
    if (begin == end) continue;
    const float* wk = packed + static_cast<size_t>(k) * cin * cout;
    if (cout % 16 == 0) {
      submit_gemm<4, 16>(q, in, cin, wk, cout, rb.pair_in(), rb.pair_out(), begin, end, out);
    } else if (cout % 8 == 0) {
      submit_gemm<4, 8>(q, in, cin, wk, cout, rb.pair_in(), rb.pair_out(), begin, end, out);
    } else {
      submit_gemm<4, 1>(q, in, cin, wk, cout, rb.pair_in(), rb.pair_out(), begin, end, out);
    }
  }
  const int32_t act = relu ? 1 : 0;
  V2X_FOR(q, m * static_cast<size_t>(cout), conv_bias_relu_body, bias, cout, act, out);
  q.wait();
}

void sparse_to_dense(sycl::queue& q, const float* features, const int32_t* coors, size_t num,
                     int32_t num_channels, const int32_t dims[3], float* dense) {
  const size_t volume = static_cast<size_t>(dims[0]) * dims[1] * dims[2];
  q.fill(dense, 0.0f, volume * static_cast<size_t>(num_channels));
  if (num == 0) {
    q.wait();
    return;
  }
  UsmArray<int32_t> owner_buf(q, volume);
  int32_t* owner = owner_buf.data();
  q.fill(owner, int32_t{-1}, volume);
  const int32_t dy = dims[1];
  const int32_t dx = dims[2];
  V2X_FOR(q, num, dense_claim_body, coors, dy, dx, owner);
  V2X_FOR(q, num, dense_write_body, features, num_channels, coors, dy, dx, volume, owner, dense);
  q.wait();
}

}  // namespace v2x
