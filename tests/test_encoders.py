"""Encoders: mn04 loads the AudioSet checkpoint strictly; the ViT keeps OPERA-GT's key layout."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from acula.aligner.encoders.mobilenet import INPUT_SCALE, INPUT_SHIFT, MobileNetAudio, load_mn04  # noqa: E402
from acula.aligner.encoders.tiny_cnn import TinyCNN  # noqa: E402
from acula.aligner.encoders.vit_mae import ViTMAE, load_vit  # noqa: E402

from tests.conftest import shared_weights_dir  # noqa: E402


def mn04_path() -> Path:
    d = shared_weights_dir()
    if d is None or not (d / "mn04_as_mAP_432.pt").is_file():
        pytest.skip("../shared/weights/mn04_as_mAP_432.pt is absent")
    return d / "mn04_as_mAP_432.pt"


def test_mn04_checkpoint_loads_with_a_strict_key_match():
    model = load_mn04(mn04_path()).eval()
    with torch.no_grad():
        fmap = model(torch.zeros(2, 96, 64))
        logits = model.audioset_logits(torch.zeros(2, 96, 64))
    assert fmap.shape == (2, 384, 4, 3) and logits.shape == (2, 527)


def test_mn04_recognises_a_sine_differently_from_silence():
    model = load_mn04(mn04_path()).eval()
    t = torch.arange(96).float()
    tone = torch.full((1, 96, 64), -1.5)
    tone[:, :, 20] = 1.5 + 0 * t
    with torch.no_grad():
        a = model.audioset_logits(torch.full((1, 96, 64), -1.5))
        b = model.audioset_logits(tone)
    assert float((a - b).abs().max()) > 0.5


def test_mn04_refuses_a_file_with_the_wrong_hash(tmp_path: Path):
    bad = tmp_path / "mn04.pt"
    torch.save(MobileNetAudio().state_dict(), bad)
    with pytest.raises(ValueError, match="sha256"):
        load_mn04(bad)


def test_input_adapter_maps_our_scale_onto_efficientat_scale():
    # 0 dB power (ln P = 0) is n = 38.7 / 36.8 in our units and (0 + 4.5) / 5 = 0.9 in theirs
    assert abs((38.7 / 36.8) * INPUT_SCALE + INPUT_SHIFT - 0.9) < 1e-6


def test_vit_state_dict_follows_the_opera_gt_layout():
    vit = ViTMAE(depth=12, decoder_depth=2)
    keys = set(vit.state_dict())
    for key in ("patch_embed.proj.weight", "cls_token", "pos_embed", "norm.weight", "blocks.0.norm1.weight",
                "blocks.11.attn.qkv.weight", "blocks.11.attn.proj.weight", "blocks.3.norm2.bias",
                "blocks.3.mlp.fc1.weight", "blocks.3.mlp.fc2.weight", "decoder_embed.weight", "mask_token",
                "decoder_pos_embed", "decoder_blocks.1.attn.qkv.weight", "decoder_norm.weight",
                "decoder_pred.weight"):
        assert key in keys, key
    assert vit.state_dict()["pos_embed"].shape == (1, 64 * 16 + 1, 384)
    assert vit.patch_embed.proj.weight.shape == (384, 1, 4, 4)


def test_vit_mae_masks_encodes_and_reconstructs():
    vit = ViTMAE(depth=2, decoder_depth=1, width=64, n_heads=4, decoder_width=32, decoder_heads=4)
    x = torch.randn(2, 256, 64)
    tokens, ids_restore, keep = vit.encode(x, mask_ratio=0.75)
    assert tokens.shape == (2, 1 + 256, 64) and keep is not None and ids_restore is not None
    pred = vit.decode(tokens, ids_restore)
    assert pred.shape == vit.patchify(x).shape == (2, 1024, 16)
    assert vit(x).shape == (2, 64, 16, 64)


def test_vit_mae_mask_hides_whole_patches_and_the_encoder_sees_only_the_visible_ones():
    vit = ViTMAE(n_frames=32, depth=2, decoder_depth=1, width=64, n_heads=4, decoder_width=32, decoder_heads=4)
    x = torch.randn(2, 32, 64)
    assert torch.equal(vit.unpatchify(vit.patchify(x)), x)
    mask = vit.random_mask(2, 0.75, torch.Generator().manual_seed(0))
    patches = vit.patchify(mask)  # (2, 128, 16): one value per patch
    assert torch.equal(patches, patches[..., :1].expand_as(patches))
    assert patches[..., 0].sum(1).tolist() == [128 - 32, 128 - 32]
    assert not torch.equal(mask[0], mask[1])
    recon = vit.reconstruct(x, mask)
    assert recon.shape == x.shape
    # new content under the hidden patches cannot reach the output; under the visible ones it must
    assert torch.allclose(vit.reconstruct(x + 5 * mask, mask), recon)
    assert not torch.allclose(vit.reconstruct(x + 5 * (1 - mask), mask), recon)
    uneven = mask.clone()
    uneven[0] = 0
    with pytest.raises(ValueError, match="same number"):
        vit.reconstruct(x, uneven)


def test_an_opera_style_checkpoint_initialises_the_vit_and_a_mismatch_is_refused(tmp_path: Path, capsys):
    import dataclasses

    from acula.aligner.config import PRESETS
    from acula.aligner.model import build_encoder

    src = ViTMAE(n_frames=32)
    encoder = {k: v for k, v in src.state_dict().items() if not k.startswith("decoder_") and k != "mask_token"}
    # a Lightning-style file: prefixed keys, a classification head the ViT does not have, no MAE decoder
    ckpt = {"state_dict": {**{f"encoder.{k}": v for k, v in encoder.items()}, "encoder.head.weight": torch.ones(2),
                           "optimizer_step": torch.zeros(1)}}
    torch.save(ckpt, tmp_path / "opera.ckpt")
    cfg = dataclasses.replace(PRESETS["opera-gt-gpu"], crop_frames=32, encoder_weights="opera.ckpt")
    vit = build_encoder(cfg, tmp_path)
    assert isinstance(vit, ViTMAE)
    assert all(torch.equal(vit.state_dict()[k], v) for k, v in encoder.items())
    err = capsys.readouterr().err
    assert "prefix 'encoder.'" in err and "decoder kept fresh" in err and "1 other tensors ignored" in err
    with pytest.raises(ValueError, match="shapes differ"):
        load_vit(tmp_path / "opera.ckpt", n_frames=64)  # another input length: pos_embed cannot be reused
    del ckpt["state_dict"]["encoder.blocks.11.mlp.fc2.weight"]
    torch.save(ckpt, tmp_path / "cut.ckpt")
    with pytest.raises(ValueError, match=r"missing: \['blocks.11.mlp.fc2.weight'\]"):
        load_vit(tmp_path / "cut.ckpt", n_frames=32)
    torch.save({"fc.weight": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a ViT"):
        load_vit(tmp_path / "other.pt")


def test_tiny_cnn_refuses_unknown_norm():
    assert TinyCNN(norm="group")(torch.zeros(1, 32, 64)).shape == (1, 64, 4, 2)
    with pytest.raises(ValueError, match="norm"):
        TinyCNN(norm="layer")


def test_every_registered_encoder_builds_and_meets_the_contract():
    import dataclasses

    from acula.aligner.config import PRESETS
    from acula.aligner.encoders import ENCODERS, MaskedAutoencoder, build_encoder

    base = dataclasses.replace(PRESETS["tiny-test"], encoder_weights=None, crop_frames=32)
    for name in ENCODERS:
        enc = build_encoder(dataclasses.replace(base, encoder=name))
        with torch.no_grad():
            fmap = enc(torch.zeros(2, 32, 64))
        assert fmap.ndim == 4 and fmap.shape[:2] == (2, enc.out_channels)
        assert isinstance(enc, MaskedAutoencoder) == (name == "vit")


def test_an_unregistered_encoder_is_refused_with_the_registry_names():
    from acula.aligner.config import AlignConfig

    with pytest.raises(ValueError, match="encoder must be one of mn04, tiny, vit"):
        AlignConfig(encoder="resnet")
