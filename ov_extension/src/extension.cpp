// The extension library's entry point: each custom op registered for the OpenVINO core (so IR
// files that contain it read back) and for the ONNX frontend under the v2xfusion domain.
#include "openvino/core/extension.hpp"
#include "openvino/core/op_extension.hpp"
#include "openvino/frontend/onnx/extension/op.hpp"

#include "bev_pool_v2_op.hpp"
#include "sparse_convolution_op.hpp"
#include "sparse_to_dense_op.hpp"

// clang-format off
OPENVINO_CREATE_EXTENSIONS(std::vector<ov::Extension::Ptr>({
    std::make_shared<ov::OpExtension<v2x_ov::BevPoolV2>>(),
    std::make_shared<ov::OpExtension<v2x_ov::SparseConvolution>>(),
    std::make_shared<ov::OpExtension<v2x_ov::SparseToDense>>(),
    std::make_shared<ov::frontend::onnx::OpExtension<v2x_ov::BevPoolV2>>("BevPoolV2", "v2xfusion"),
    std::make_shared<ov::frontend::onnx::OpExtension<v2x_ov::SparseConvolution>>("SparseConvolution", "v2xfusion"),
    std::make_shared<ov::frontend::onnx::OpExtension<v2x_ov::SparseToDense>>("SparseToDense", "v2xfusion"),
}));
// clang-format on
