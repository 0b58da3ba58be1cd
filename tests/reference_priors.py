"""A plain, slow, per-image reference of PI-CLIP's priors, written from `shared/specs/pi-clip.md` (§1.5 VTP, §2 VVP,
§3 PIR) — deliberately *not* sharing code with `clipfss_nb.vtp/vvp/pir`.

It follows the reference code's structure: one image at a time, `nn.MultiheadAttention(need_weights=True)` for every
block, a forward hook on the last block's `ln_1` plus a tensor hook for its gradient (as pytorch-grad-cam does),
`backward()` on the target probability, the CAM in numpy, boxes with `scipy.ndimage.label` (8-connectivity),
the N×N affinity squared explicitly, and the VVP cosine per shot in numpy. Differences from the PI-CLIP code, all
outside the math: fp32 everywhere (the reference runs fp16 on GPU), the VTP input is resized with torch bicubic
instead of PIL bicubic on uint8, and OpenCV contours are replaced by connected components (the spec verified the
equivalence). Used by the parity tests and by `benchmarks/priors.py`.
"""
from __future__ import annotations
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def norm_img(x, mean, std):
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def scale_cam(cam):
    "pytorch-grad-cam's `scale_cam_image` without resizing."
    cam = cam - np.min(cam)
    return cam / (1e-7 + np.max(cam))


def embed(visual, px):
    "(1,3,H,W) normalised → tokens after ln_pre (1, 1+N, C), grid; pos-emb resized bilinearly (PI-CLIP)."
    x = visual.conv1(px)
    C, h, w = x.shape[1:]
    x = x.reshape(1, C, h * w).permute(0, 2, 1)
    pos = visual.positional_embedding
    g = int(round((pos.shape[0] - 1) ** 0.5))
    if (h, w) != (g, g):
        grid = pos[1:].reshape(g, g, C).permute(2, 0, 1)[None]
        grid = F.interpolate(grid, size=(h, w), mode='bilinear', align_corners=False)[0]
        pos = torch.cat([pos[:1], grid.permute(1, 2, 0).reshape(h * w, C)])
    x = torch.cat([visual.class_embedding.reshape(1, 1, C), x], dim=1) + pos
    return visual.ln_pre(x), (h, w)


def block_with_weights(blk, x):
    z = blk.ln_1(x)
    o, a = blk.attn(z, z, z, need_weights=True, average_attn_weights=True)
    x = x + blk.ls_1(o)
    return x + blk.ls_2(blk.mlp(blk.ln_2(x))), a


def ref_vtp(clip, tokenizer, px, texts, target):
    """Softmax-GradCAM of one CLIP-normalised image (1,3,H,W) for `texts[target]` against all `texts`.
    Returns (cam (h,w) float64, list of 12 head-averaged attention maps (1+N,1+N), probs)."""
    v = clip.visual
    blocks = list(v.transformer.resblocks)
    attns = []
    with torch.no_grad():
        x, (h, w) = embed(v, px)
        for blk in blocks[:-1]:
            x, a = block_with_weights(blk, x)
            attns.append(a[0].double().numpy())
    store = {}
    def fwd_hook(mod, inp, out):
        store['act'] = out.detach().cpu().numpy()
        out.register_hook(lambda g: store.__setitem__('grad', g.detach().cpu().numpy()))
    handle = blocks[-1].ln_1.register_forward_hook(fwd_hook)
    try:
        x = x.detach().requires_grad_(True)
        x, a = block_with_weights(blocks[-1], x)
        attns.append(a[0].detach().double().numpy())
        feat = v.ln_post(x)[:, 1:].mean(1) @ v.proj
        feat = feat / feat.norm(dim=-1, keepdim=True)
        with torch.no_grad():
            t = clip.encode_text(tokenizer(texts))
            t = t / t.norm(dim=-1, keepdim=True)
        probs = (clip.logit_scale.exp() * feat @ t.t()).softmax(dim=-1)
        probs[0, target].backward()
    finally:
        handle.remove()
    act = store['act'][0, 1:].T.reshape(-1, h, w).astype(np.float64)  # reshape_transform: drop CLS, (C, h, w)
    grad = store['grad'][0, 1:].T.reshape(-1, h, w).astype(np.float64)
    weights = grad.mean(axis=(1, 2))
    cam = np.maximum((weights[:, None, None] * act).sum(0), 0)
    cam = scale_cam(np.maximum(scale_cam(cam), 0))  # scale, aggregate (ReLU, mean of one layer), scale
    return cam, attns, probs.detach()[0].numpy()


def ref_boxes(cam, threshold=0.4):
    "CLIP-ES `scoremap2bbox` + the box fill, via 8-connected components (equivalent to cv2 contours)."
    H, W = cam.shape
    q = (cam * 255).astype(np.uint8)
    fg = q > int(threshold * np.max(q))
    lab, _ = ndimage.label(fg, structure=np.ones((3, 3), int))
    out = np.zeros((H, W), np.float64)
    for sl in ndimage.find_objects(lab):
        if sl is None: continue
        y0, x0 = sl[0].start, sl[1].start
        y1, x1 = min(sl[0].stop, H - 1), min(sl[1].stop, W - 1)
        out[y0:y1, x0:x1] = 1
    return out


def brute_boxes(cam, threshold=0.4):
    "Box mask by a hand-written flood fill (8-neighbours): the brute-force check of `ref_boxes`."
    H, W = cam.shape
    q = (cam * 255).astype(np.uint8)
    fg = q > int(threshold * np.max(q))
    seen = np.zeros_like(fg)
    out = np.zeros((H, W), bool)
    for sy in range(H):
        for sx in range(W):
            if not fg[sy, sx] or seen[sy, sx]: continue
            stack, ys, xs = [(sy, sx)], [], []
            seen[sy, sx] = True
            while stack:
                y, x = stack.pop(); ys.append(y); xs.append(x)
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < H and 0 <= xx < W and fg[yy, xx] and not seen[yy, xx]:
                            seen[yy, xx] = True; stack.append((yy, xx))
            x0, y0, bw, bh = min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1  # cv2.boundingRect
            out[y0:min(y0 + bh, H - 1), x0:min(x0 + bw, W - 1)] = True
    return out


def ref_pir(cam, attns, n_layers=8, threshold=0.4):
    "PIR exactly as written in the reference: explicit N×N square, column-masked by the boxes. Returns (refined, boxes)."
    h, w = cam.shape
    A = np.mean([a[1:, 1:] for a in attns[-n_layers:]], axis=0)
    T = A / A.sum(axis=0, keepdims=True)
    T = T / T.sum(axis=1, keepdims=True)
    T = np.maximum(T, T @ T.T)
    R = T @ T
    boxes = ref_boxes(cam, threshold)
    R = R * boxes.reshape(1, -1)
    refined = (R @ cam.reshape(-1, 1)).reshape(h, w)
    return scale_cam(refined), boxes.astype(bool)


def tokens_of(visual, px, blocks):
    "Patch tokens (N, C) of the requested 0-based blocks for one normalised image, module calls only."
    out = {}
    with torch.no_grad():
        x, grid = embed(visual, px)
        for i, blk in enumerate(visual.transformer.resblocks):
            x, _ = block_with_weights(blk, x)  # the reference keeps (and ignores) every attention map
            if i in blocks: out[i] = x[0, 1:].double().numpy()
    return out, grid


def ref_vvp(visual, query01, supports01, masks, blocks=(11, 10)):
    "VVP of one query (3,H,W) against K supports [(3,H,W)] with masks [(H,W)]: (len(blocks)*K, h, w), [b_a shots.., b_b shots..]."
    qt, grid = tokens_of(visual, norm_img(query01, IMAGENET_MEAN, IMAGENET_STD)[None], blocks)
    maps = {b: [] for b in blocks}
    for s, m in zip(supports01, masks):
        fg = (torch.as_tensor(m) == 1).float()
        st, grid = tokens_of(visual, (norm_img(s, IMAGENET_MEAN, IMAGENET_STD) * fg)[None], blocks)
        mm = F.interpolate(fg[None, None], size=grid, mode='nearest')[0, 0].reshape(-1).double().numpy()
        for b in blocks:
            q, sf = qt[b], st[b] * mm[:, None]
            sim = (q @ sf.T) / (np.linalg.norm(q, axis=1)[:, None] * np.linalg.norm(sf, axis=1)[None, :] + 1e-7)
            maps[b].append(sim.max(axis=1).reshape(grid))
    return np.stack([m for b in blocks for m in maps[b]])


def ref_priors(bb, query01, supports01, masks, class_name, size=None, competitors=None, blocks=(11, 10)):
    """All three priors of one episode, per the spec. `competitors`: class names in the softmax (default: the
    target alone, i.e. {"a photo of c.", "a photo without c."}). Returns dict of numpy maps at `size`."""
    clip, tok = bb.clip, bb.tokenizer
    H, W = query01.shape[-2:]
    size = tuple(size or (H, W))
    p = clip.visual.patch_size[0]  # the patchify stride (a conv stem has the same)
    vh, vw = p * int(np.ceil(H / p)), p * int(np.ceil(W / p))
    x = query01[None].float()
    if (vh, vw) != (H, W): x = F.interpolate(x, size=(vh, vw), mode='bicubic', align_corners=False).clamp(0, 1)
    names = list(competitors or [class_name])
    texts = [f'a photo of {n}.' for n in names] + [f'a photo without {n}.' for n in names]
    cam, attns, _ = ref_vtp(clip, tok, norm_img(x[0], CLIP_MEAN, CLIP_STD)[None], texts, names.index(class_name))
    refined, boxes = ref_pir(cam, attns)
    def up(m, first_to_image=True):
        t = torch.from_numpy(np.ascontiguousarray(m)).float()[None, None] if m.ndim == 2 else torch.from_numpy(m).float()[None]
        if first_to_image:
            t = F.interpolate(t, size=(H, W), mode='bilinear', align_corners=False)
            if size != (H, W): t = F.interpolate(t, size=size, mode='bilinear', align_corners=True)
        else: t = F.interpolate(t, size=size, mode='bilinear', align_corners=True)
        return t[0].numpy()
    vvp = ref_vvp(clip.visual, query01, supports01, masks, blocks)
    return dict(cam=cam, refined_grid=refined, boxes=boxes, vtp=up(cam), vtp_refined=up(refined),
                vvp_grid=vvp, vvp=up(vvp, first_to_image=False))


def ref_vtp_official(bb, query01, original_size, class_name, labels, size=(60, 60)):
    """The official recipe of the VTP from the 473×473 query, as PI-CLIP's `get_img_cam` + `OneModel.forward` do it:
    `x_cv2` (0–255 floats) → `astype(uint8)` (truncation) → PIL → torchvision `Resize((16⌈H_o/16⌉, 16⌈W_o/16⌉),
    BICUBIC)` → `ToTensor` → CLIP `Normalize`; softmax-GradCAM against the query's labels; PIR; min–max; resize to the
    original size (H_o, W_o) (cv2 INTER_LINEAR = bilinear with half-pixel centres); bilinear align_corners=True to
    `size`. Returns dict of numpy maps: cam, refined_grid, boxes (grid), vtp, vtp_refined (at `size`)."""
    from PIL import Image
    from torchvision import transforms
    Ho, Wo = original_size
    x_cv2 = query01.permute(1, 2, 0).numpy() * np.float32(255)  # (H, W, 3) the dataset's float image
    pil = Image.fromarray(x_cv2.astype(np.uint8))
    tf = transforms.Compose([transforms.Resize((16 * int(np.ceil(Ho / 16)), 16 * int(np.ceil(Wo / 16))), interpolation=transforms.InterpolationMode.BICUBIC),
                             transforms.ToTensor(), transforms.Normalize(CLIP_MEAN, CLIP_STD)])
    names = list(dict.fromkeys(labels))
    texts = [f'a photo of {n}.' for n in names] + [f'a photo without {n}.' for n in names]
    cam, attns, _ = ref_vtp(bb.clip, bb.tokenizer, tf(pil)[None], texts, names.index(class_name))
    refined, boxes = ref_pir(cam, attns)
    refined = scale_cam(refined)  # get_img_cam normalises once more before the resize
    def up(m):
        t = torch.from_numpy(np.ascontiguousarray(m)).float()[None, None]
        t = F.interpolate(t, size=(Ho, Wo), mode='bilinear', align_corners=False)  # cv2.resize(…, (W_o, H_o)) INTER_LINEAR
        return F.interpolate(t, size=tuple(size), mode='bilinear', align_corners=True)[0].numpy()
    return dict(cam=cam, refined_grid=refined, boxes=boxes, vtp=up(cam), vtp_refined=up(refined))
