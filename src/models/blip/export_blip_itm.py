#!/usr/bin/env python3
"""Export a Hugging Face BLIP image-text-matching checkpoint to the ONNX files that
src/models/blip/blip-itm.ts reads (needs internet once, torch, transformers, onnx):

    python3 src/models/blip/export_blip_itm.py Salesforce/blip-itm-base-coco models/blip-itm-base-coco
    npx duo ... --reranker models/blip-itm-base-coco

Writes, beside the tokenizer and preprocessor files of the checkpoint:
    onnx/vision_model.onnx  pixel_values[B,3,384,384] -> image_embeds[B,577,768], image_feat[B,256]
    onnx/text_itm.onnx      input_ids[B,L], attention_mask[B,L], image_embeds[B,N,768] -> itm_logits[B,2]
    onnx/text_itc.onnx      input_ids[B,L], attention_mask[B,L] -> text_feat[B,256]
These follow BlipForImageTextRetrieval.forward in transformers (use_itm_head=True and False).

--random-init exports a small randomly initialised BLIP instead (no download), and --check
compares onnxruntime's outputs with PyTorch's on random inputs; together they test the
export path on a machine with no hub access.
"""
import argparse
import json
import os

import torch
import torch.nn.functional as F


class Vision(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        image_embeds = self.model.vision_model(pixel_values=pixel_values, return_dict=False)[0]
        image_feat = F.normalize(self.model.vision_proj(image_embeds[:, 0, :]), dim=-1)
        return image_embeds, image_feat


class TextItm(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, image_embeds):
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        hidden = self.model.text_encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts,
            return_dict=False,
        )[0]
        return self.model.itm_head(hidden[:, 0, :])


class TextItc(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model.text_encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]
        return F.normalize(self.model.text_proj(hidden[:, 0, :]), dim=-1)


def load(args):
    from transformers import BlipConfig, BlipForImageTextRetrieval

    if args.random_init:
        torch.manual_seed(0)
        config = BlipConfig(
            text_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128, "vocab_size": 30524, "encoder_hidden_size": 64},
            vision_config={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128, "image_size": 384, "patch_size": 16},
            projection_dim=32,
        )
        return BlipForImageTextRetrieval(config).eval(), None
    from transformers import BlipProcessor

    return BlipForImageTextRetrieval.from_pretrained(args.model).eval(), BlipProcessor.from_pretrained(args.model)


def export(args):
    model, processor = load(args)
    os.makedirs(os.path.join(args.out, "onnx"), exist_ok=True)
    size = model.config.vision_config.image_size
    pixels = torch.randn(2, 3, size, size)
    ids = torch.randint(1000, 2000, (2, 12))
    ids[:, 0] = 101
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    vision, itm, itc = Vision(model), TextItm(model), TextItc(model)
    with torch.no_grad():
        image_embeds, image_feat = vision(pixels)
        logits = itm(ids, mask, image_embeds)
        text_feat = itc(ids, mask)
    common = dict(opset_version=17, do_constant_folding=True)
    torch.onnx.export(vision, (pixels,), os.path.join(args.out, "onnx", "vision_model.onnx"),
                      input_names=["pixel_values"], output_names=["image_embeds", "image_feat"],
                      dynamic_axes={"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}, "image_feat": {0: "batch"}}, **common)
    torch.onnx.export(itm, (ids, mask, image_embeds), os.path.join(args.out, "onnx", "text_itm.onnx"),
                      input_names=["input_ids", "attention_mask", "image_embeds"], output_names=["itm_logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                                    "image_embeds": {0: "batch", 1: "patches"}, "itm_logits": {0: "batch"}}, **common)
    torch.onnx.export(itc, (ids, mask), os.path.join(args.out, "onnx", "text_itc.onnx"),
                      input_names=["input_ids", "attention_mask"], output_names=["text_feat"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}, "text_feat": {0: "batch"}}, **common)
    if processor is not None:
        processor.save_pretrained(args.out)  # tokenizer.json, tokenizer_config.json, preprocessor_config.json
    config = {"model_type": "blip-itm", "source": args.model if not args.random_init else "random-init", "image_size": size}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if args.check:
        import numpy as np
        import onnxruntime as ort

        def run(name, feeds):
            return ort.InferenceSession(os.path.join(args.out, "onnx", name)).run(None, {k: v.numpy() for k, v in feeds.items()})

        got_embeds, got_feat = run("vision_model.onnx", {"pixel_values": pixels})
        got_logits, = run("text_itm.onnx", {"input_ids": ids, "attention_mask": mask, "image_embeds": image_embeds})
        got_text, = run("text_itc.onnx", {"input_ids": ids, "attention_mask": mask})
        for name, a, b in [("image_embeds", got_embeds, image_embeds), ("image_feat", got_feat, image_feat),
                           ("itm_logits", got_logits, logits), ("text_feat", got_text, text_feat)]:
            diff = float(np.abs(a - b.numpy()).max())
            print(f"{name}: max |onnx - torch| = {diff:.2e}")
            assert diff < 1e-3, name
    print(f"wrote {args.out}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="Hugging Face id or local checkpoint, e.g. Salesforce/blip-itm-base-coco")
    p.add_argument("out", help="output directory")
    p.add_argument("--random-init", action="store_true", help="export a small randomly initialised BLIP (no download)")
    p.add_argument("--check", action="store_true", help="compare onnxruntime outputs with PyTorch")
    export(p.parse_args())
