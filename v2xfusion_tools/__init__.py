"""v2xfusion offline tools: data sets, training, export and quantization (may import torch)."""
