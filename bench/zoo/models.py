"""The architectures of the prune zoo, by family, with random weights and 10 classes.

Breadth over depth: one or two small members of every timm family that builds in seconds on a
CPU, so a row says whether kdr (and Torch-Pruning) handle that family's ops, not how well one
model compresses. Where the issue names a model too large for two cores (maxvit_tiny), a
smaller member of the family stands in. ``QUICK`` is a subset that touches each kind of block
(residual, depthwise + SE, dense concat, attention, window attention, MLP-mixer).
"""

from __future__ import annotations

#: ``(timm name, family)``, in the order of the table.
ZOO: tuple[tuple[str, str], ...] = (
    # plain and residual CNNs
    ("resnet18", "resnet"),
    ("resnet50", "resnet"),
    ("seresnext26d_32x4d", "resnet"),
    ("ecaresnet26t", "resnet"),
    ("resnest14d", "resnest"),
    ("res2net50_14w_8s", "res2net"),
    ("skresnet18", "sknet"),
    ("cspresnet50", "cspnet"),
    ("dpn68", "dpn"),
    ("densenet121", "densenet"),
    ("dla34", "dla"),
    ("hrnet_w18_small", "hrnet"),
    ("vgg11", "vgg"),
    ("repvgg_a0", "byobnet"),
    ("gernet_s", "byobnet"),
    ("mobileone_s0", "byobnet"),
    ("regnetx_002", "regnet"),
    ("regnety_002", "regnet"),
    ("regnetz_b16", "byobnet"),
    ("ese_vovnet19b_dw", "vovnet"),
    ("selecsls42b", "selecsls"),
    ("xception41", "xception"),
    ("inception_v3", "inception"),
    ("nfnet_l0", "nfnet"),
    ("nf_resnet26", "nfnet"),
    ("hgnetv2_b0", "hgnet"),
    ("botnet26t_256", "byoanet"),
    # mobile CNNs
    ("mobilenetv2_050", "efficientnet"),
    ("mobilenetv3_small_100", "mobilenetv3"),
    ("mobilenetv4_conv_small", "mobilenetv3"),
    ("efficientnet_b0", "efficientnet"),
    ("tf_efficientnetv2_b0", "efficientnet"),
    ("mixnet_s", "efficientnet"),
    ("mnasnet_small", "efficientnet"),
    ("semnasnet_050", "efficientnet"),
    ("spnasnet_100", "efficientnet"),
    ("fbnetc_100", "efficientnet"),
    ("tinynet_e", "efficientnet"),
    ("hardcorenas_a", "hardcorenas"),
    ("lcnet_050", "mobilenetv3"),
    ("ghostnet_100", "ghostnet"),
    ("ghostnetv2_100", "ghostnet"),
    ("rexnet_100", "rexnet"),
    ("repvit_m0_9", "repvit"),
    ("fastvit_t8", "fastvit"),
    ("starnet_s1", "starnet"),
    # modern CNNs and metaformers
    ("convnext_atto", "convnext"),
    ("convnextv2_atto", "convnext"),
    ("poolformer_s12", "metaformer"),
    ("edgenext_xx_small", "edgenext"),
    ("efficientformer_l1", "efficientformer"),
    ("mobilevit_xxs", "mobilevit"),
    ("mobilevitv2_050", "mobilevit"),
    ("efficientvit_b0", "efficientvit_mit"),
    ("efficientvit_m0", "efficientvit_msra"),
    # transformers and MLPs
    ("vit_tiny_patch16_224", "vit"),
    ("deit_tiny_patch16_224", "deit"),
    ("cait_xxs24_224", "cait"),
    ("xcit_nano_12_p16_224", "xcit"),
    ("pit_ti_224", "pit"),
    ("swin_tiny_patch4_window7_224", "swin"),
    ("tiny_vit_5m_224", "tiny_vit"),
    ("coat_lite_tiny", "coat"),
    ("levit_128s", "levit"),
    ("pvt_v2_b0", "pvt_v2"),
    ("maxvit_pico_rw_256", "maxvit"),
    ("resmlp_12_224", "mlp_mixer"),
    ("mixer_s32_224", "mlp_mixer"),
)

#: ~8 models, one per kind of block, for ``--quick`` (under three minutes).
QUICK: tuple[str, ...] = (
    "resnet18",
    "mobilenetv3_small_100",
    "densenet121",
    "regnety_002",
    "convnext_atto",
    "mobilevit_xxs",
    "vit_tiny_patch16_224",
    "resmlp_12_224",
)

FAMILY = dict(ZOO)

__all__ = ["FAMILY", "QUICK", "ZOO"]
