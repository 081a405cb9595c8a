"""``prune.heads`` on timm, torchvision and Hugging Face transformers (tiny, random weights).

Each case halves the heads of every attention module, keeps the output shape, trains one step,
and replays from its record onto a fresh model into which the pruned state dict loads with
outputs allclose; the pruned timm ViT also exports to ONNX and runs in onnxruntime.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn

from compiler.ops import PruneHeadsParams
from runtime.passes import PassContext, replay_pass, run_pass
from runtime.passes.heads import PrunableMultiheadAttention, apply_heads, prune_heads_of
from runtime.passes.heads.layouts import layout_for


def _heads(model: nn.Module) -> list[int]:
    out = []
    for path, m in model.named_modules():
        lay = layout_for(model, path, m) if path else None
        if lay is not None:
            out.append(lay.units)
        elif isinstance(m, nn.MultiheadAttention):
            out.append(m.num_heads)
    return out


def _train_step(model: nn.Module, x: torch.Tensor) -> None:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    before = [p.detach().clone() for p in model.parameters()]
    loss = (model(x)).sum()
    loss.backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))


def _check(build: Callable[[], nn.Module], x: torch.Tensor) -> nn.Module:
    torch.manual_seed(0)
    model = build().eval()
    heads = _heads(model)
    assert heads and all(h >= 2 for h in heads)
    with torch.no_grad():
        ref = model(x)
    ctx = PassContext(example_inputs=x)
    result = run_pass("prune.heads", model, PruneHeadsParams(ratio=0.5), ctx)
    pruned = result.module.eval()
    assert _heads(pruned) == [h // 2 for h in heads]
    assert result.info["heads_after"] * 2 == result.info["heads_before"]
    assert result.info["params_after"] < result.info["params_before"]
    with torch.no_grad():
        out = pruned(x)
    assert out.shape == ref.shape and not torch.allclose(out, ref)
    fresh = replay_pass("prune.heads", build().eval(), result.record)
    fresh.load_state_dict(pruned.state_dict())
    with torch.no_grad():
        assert torch.allclose((fresh.eval()(x)), out, atol=1e-5)
    _train_step(copy.deepcopy(pruned), x)
    return pruned


def test_prunable_mha_matches_nn_mha_with_masks_and_weights():
    torch.manual_seed(0)
    for batch_first in (True, False):
        m = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
        p = PrunableMultiheadAttention.from_mha(m).eval()
        x = torch.randn(2, 5, 16) if batch_first else torch.randn(5, 2, 16)
        pad = torch.tensor([[False] * 4 + [True], [False] * 5])
        causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
        for kwargs in ({}, {"key_padding_mask": pad}, {"attn_mask": causal}):
            a, wa = m(x, x, x, **kwargs)
            b, wb = p(x, x, x, **kwargs)
            assert torch.allclose(a, b, atol=1e-5) and torch.allclose(wa, wb, atol=1e-6)
            c, none = p(x, x, x, need_weights=False, **kwargs)
            assert none is None and torch.allclose(a, c, atol=1e-5)


def test_torchvision_vit():
    tv = pytest.importorskip("torchvision")

    def build() -> nn.Module:
        model = tv.models.VisionTransformer(
            image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=64,
            mlp_dim=128, num_classes=10,
        )  # fmt: skip
        nn.init.normal_(model.heads.head.weight)  # zero-initialised: every output would be 0
        return model

    pruned = _check(build, torch.randn(2, 3, 32, 32))
    attn = pruned.encoder.layers[0].self_attention
    assert isinstance(attn, PrunableMultiheadAttention) and attn.q_proj.out_features == 32


def test_timm_vit_and_its_onnx_export(tmp_path):
    timm = pytest.importorskip("timm")
    ort = pytest.importorskip("onnxruntime")

    def build() -> nn.Module:
        return timm.create_model(
            "vit_tiny_patch16_224",
            pretrained=False,
            img_size=32,
            depth=2,
            num_heads=4,
            num_classes=10,
        )

    x = torch.randn(2, 3, 32, 32)
    pruned = _check(build, x)
    blk = pruned.blocks[0].attn
    assert blk.num_heads == 2 and blk.qkv.out_features == 3 * 96 and blk.proj.in_features == 96
    path = tmp_path / "vit.onnx"
    torch.onnx.export(pruned, (x,), str(path), input_names=["x"], dynamo=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy()})
    with torch.no_grad():
        assert torch.allclose(torch.from_numpy(got), pruned(x), atol=1e-4)


def _bert():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, max_position_embeddings=16, num_labels=3,
    )  # fmt: skip
    return lambda: Logits(transformers.BertForSequenceClassification(config))


class Logits(nn.Module):
    """A Hugging Face classifier as kdr runs it: input ids in, logits out."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids).logits


def test_hf_bert():
    build = _bert()
    ids = torch.randint(0, 50, (2, 8))
    pruned = _check(build, ids)
    layer = pruned.model.bert.encoder.layer[0]
    assert layer.attention.self.num_attention_heads == 2
    assert layer.attention.self.all_head_size == 32
    assert layer.attention.output.dense.in_features == 32


def test_llama_gqa_prunes_whole_kv_groups():
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 50, (1, 6))
    _, info = prune_heads_of(model, 0.5)
    attn = model.model.layers[0].self_attn
    assert info["heads_before"] == 4 and info["heads_after"] == 2  # kv groups, 2 per layer
    assert attn.k_proj.out_features == 16 and attn.q_proj.out_features == 32
    assert model(ids).logits.shape == (1, 6, 50)


def test_global_ranking_keeps_a_head_everywhere_and_local_rounds():
    torch.manual_seed(0)
    model = nn.Sequential(nn.MultiheadAttention(8, 4), nn.MultiheadAttention(8, 2))
    with torch.no_grad():
        model[0].in_proj_weight.mul_(100)  # the first module's heads all outrank the second's
    record, _ = prune_heads_of(copy.deepcopy(model), 0.5, ranking="global")
    assert len(record["heads"]["0"]) >= 1 and len(record["heads"]["1"]) >= 1
    record, _ = prune_heads_of(copy.deepcopy(model), 0.25, ranking="local")
    assert [len(k) for k in record["heads"].values()] == [3, 1]


def test_scope_and_no_attention_errors():
    from recipe_lang.diagnostics import KdrError
    from runtime.passes.scopes import Scope

    model = nn.Sequential(*(nn.MultiheadAttention(8, h) for h in (4, 4, 1)))
    record, _ = prune_heads_of(model, 0.5, scope=Scope(exclude=("1",)))
    assert list(record["heads"]) == ["0"]  # excluded, or a single head: left as they are
    assert isinstance(model[1], nn.MultiheadAttention)
    assert isinstance(model[2], nn.MultiheadAttention)
    fresh = apply_heads(nn.Sequential(*(nn.MultiheadAttention(8, h) for h in (4, 4, 1))), record)
    fresh.load_state_dict(model.state_dict())
    with pytest.raises(KdrError) as err:
        prune_heads_of(nn.Sequential(nn.Linear(2, 2)), 0.5)
    assert err.value.diagnostics[0].code == "KDR502"


def test_taylor_uses_a_labelled_batch():
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 4, batch_first=True)
            self.fc = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.attn(x, x, x)[0].mean(1))

    x, y = torch.randn(4, 5, 8), torch.tensor([0, 1, 2, 0])
    record, _ = prune_heads_of(Net(), 0.5, "taylor", batches=lambda: [(x, y)])
    assert len(record["heads"]["attn"]) == 2
    assert all(p.grad is None for p in Net().parameters())


def test_timm_swin_window_attention_slices_its_bias_table():
    timm = pytest.importorskip("timm")

    def build() -> nn.Module:
        return timm.create_model(
            "swin_tiny_patch4_window7_224", pretrained=False, img_size=32, window_size=4,
            embed_dim=32, depths=(1, 1), num_heads=(2, 4), num_classes=10,
        )  # fmt: skip

    pruned = _check(build, torch.randn(2, 3, 32, 32))
    attn = pruned.layers[1].blocks[0].attn
    assert attn.num_heads == 2 and attn.relative_position_bias_table.shape[1] == 2


def test_torch_transformer_encoder_runs_its_regular_path_after_pruning():
    torch.manual_seed(0)

    def build() -> nn.Module:
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
        return nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()

    enc, x = build(), torch.randn(2, 5, 32)
    pad = torch.tensor([[False] * 4 + [True], [False] * 5])
    record, _ = prune_heads_of(enc, 0.5)
    assert [len(k) for k in record["heads"].values()] == [2, 2]
    with torch.no_grad():  # eval + padding mask + no grad: where the nested fast path would run
        out = enc(x, src_key_padding_mask=pad)
    fresh = apply_heads(build(), record)
    fresh.load_state_dict(enc.state_dict())
    with torch.no_grad():
        assert torch.allclose(fresh(x, src_key_padding_mask=pad), out, atol=1e-5)
    enc.train()
    enc(x, src_key_padding_mask=pad).sum().backward()


def test_hf_vit_q_k_v_o_projections():
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=128, num_labels=10,
    )  # fmt: skip
    pruned = _check(
        lambda: Logits(transformers.ViTForImageClassification(config)), torch.randn(2, 3, 32, 32)
    )
    attn = pruned.model.vit.layers[0].attention
    assert attn.q_proj.out_features == 32 and attn.o_proj.in_features == 32
