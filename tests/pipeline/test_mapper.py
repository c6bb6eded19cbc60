import numpy as np
import torch

from featx.pipeline.mapper import DeviceMapper, pack, unpack
from tests.conftest import TINY_SIZE, tiny_backbone


def test_pack_unpack_round_trip_keeps_every_layer_and_shape():
    outputs = {"block_0": {"cls": torch.randn(3, 4), "patch": torch.randn(3, 2, 2, 4)},
               "block_1": {"cls": torch.randn(3, 5)}}
    flat, layout = pack(outputs)
    assert flat.dtype == torch.float16 and flat.shape == (3, 4 + 16 + 5)
    back = unpack(flat.numpy(), layout)
    for layer, kinds in outputs.items():
        for kind, tensor in kinds.items():
            np.testing.assert_array_equal(back[layer][kind], tensor.to(torch.float16).numpy())


def test_batches_come_back_in_order_with_their_payload_and_match_a_direct_forward():
    backbone = tiny_backbone()
    mapper = DeviceMapper(backbone, torch.device("cpu"), depth=2)
    batches = [torch.randint(0, 256, (2, 3, TINY_SIZE, TINY_SIZE), dtype=torch.uint8) for _ in range(4)]
    landed = []
    for i, pixels in enumerate(batches):
        landed += list(mapper.submit(pixels, i))
        assert len(landed) == max(0, i + 1 - 2)  # two batches stay in flight
    landed += list(mapper.flush())
    assert [payload for _, payload in landed] == [0, 1, 2, 3]
    mean = torch.tensor(backbone.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.spec.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        direct = backbone.model((batches[3].float() / 255.0 - mean) / std)
    np.testing.assert_allclose(landed[3][0]["block_1"]["cls"], direct["block_1"]["cls"].numpy(), atol=2e-2, rtol=1e-2)
