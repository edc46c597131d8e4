"""Is a page readable in both of the theme's colour modes? The check .ci/browser_check.py runs on every page.

``check_readability(driver, rel)`` switches the open page to light, then dark mode (as the theme's switch does,
every dropdown open) and reports: a figure with transparent pixels (it shows whatever is behind it: the dark mode's
background, Jupyter's or Colab's), an image transparent over a dark background, and text whose contrast with the
colour actually behind it is under CONTRAST_MIN. tests/test_browser_check.py shows each rule failing on a tiny page.
"""

from __future__ import annotations

# Readability. WCAG 2 contrast ratio (relative luminance, 1:1 to 21:1) of each text against the colour behind it, in
# both modes. The floor is 3:1, WCAG's minimum for large text and for the parts of graphics one has to see (1.4.3,
# 1.4.11): under it text is hard to read for anyone, and that is what this check is for: dark grey on black, light
# grey on white, text the other mode's colours were meant for. It is not a WCAG AA audit (4.5:1 for body text): the
# theme's own link colour on its tinted admonition backgrounds is 4.3:1 in light mode, legible, and not this book's.
CONTRAST_MIN = 3.0
DARK_BACKGROUND = 0.2  # relative luminance under which a background is dark (the theme's dark canvas is 0.007)

# Sets the colour mode as the theme's switch does (pydata-sphinx-theme styles everything on html[data-theme]; its
# switch also stores the choice in localStorage, which would carry over to the next page, so this does not), with
# transitions off so that the new colours apply at once, and opens every dropdown so that hidden text is read too.
SET_MODE = """
const mode = arguments[0];
if (!document.getElementById("browser-check-no-transitions")) {
    const style = document.createElement("style");
    style.id = "browser-check-no-transitions";
    style.textContent = "*, *::before, *::after { transition: none !important; animation: none !important; }";
    document.head.appendChild(style);
}
document.documentElement.dataset.mode = mode;
document.documentElement.dataset.theme = mode;
document.querySelectorAll(".toggle-hidden > .admonition-title > button.toggle-button").forEach(b => b.click());
document.querySelectorAll("details:not([open])").forEach(d => { d.open = true; });
return document.documentElement.dataset.theme;
"""

# Colour helpers, prepended to each of the two checks below: parse a computed colour, composite, WCAG luminance and
# ratio, and the opaque colour behind an element (its own background and its ancestors', composited from the canvas
# up; null where an image or a gradient is behind it, whose colour the styles do not tell).
COLOURS = r"""
const parse = c => {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
};
const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat([1]);
const luminance = c => {
    const [r, g, b] = c.slice(0, 3).map(v => {
        v /= 255;
        return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
};
const behind = el => {
    const stack = [];
    for (let e = el; e; e = e.parentElement) {
        const s = getComputedStyle(e);
        if (s.backgroundImage !== "none") return null;
        const c = parse(s.backgroundColor);
        if (c && c[3] > 0) stack.push(c);
        if (c && c[3] >= 1) break;
    }
    let colour = [255, 255, 255, 1];  // the browser's canvas, under everything
    for (const c of stack.reverse()) colour = over(c, colour);
    return colour;
};
const rgb = c => "rgb(" + c.slice(0, 3).map(Math.round).join(", ") + ")";
"""

# Every visible element with text of its own (and every formula, whose glyphs MathJax draws from CSS): its
# contrast with the colour behind it, its colour dimmed by the opacity of it and its ancestors.
TEXT_CONTRAST = r"""
const [minimum] = arguments;
const elements = new Set(document.querySelectorAll("mjx-container"));
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (n.textContent.trim() && el && !el.closest("script, style, noscript, svg, title, mjx-assistive-mml")) {
        elements.add(el);
    }
}
const low = [];
for (const el of elements) {
    const box = el.getBoundingClientRect(), s = getComputedStyle(el);
    if (box.width <= 1 || box.height <= 1 || s.visibility !== "visible" || s.clip !== "auto") continue;
    const bg = behind(el);
    if (!bg) continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const c = parse(s.color);
    const fg = over([c[0], c[1], c[2], c[3] * opacity], bg);
    const ratio = contrast(fg, bg);
    if (ratio < minimum) {
        const text = el.tagName === "MJX-CONTAINER" ? "(a formula)" : el.textContent.trim().replace(/\s+/g, " ");
        low.push([ratio, text.slice(0, 60), rgb(fg), rgb(bg), el.tagName.toLowerCase() + "." + el.classList]);
    }
}
return low;
"""

# Every loaded image of the page's content: the share of its pixels that are not opaque (drawn on a canvas at its
# natural size, at most 1000 pixels a side), whether it is a figure (a cell's output or a figure directive's
# image), and the luminance of the colour that shows through its transparent parts.
IMAGE_ALPHA = """
const out = [];
const content = document.querySelector(".bd-content") || document.body;
for (const img of content.querySelectorAll("img")) {
    if (!img.complete || !img.naturalWidth || img.getBoundingClientRect().width <= 1) continue;
    const scale = Math.min(1, 1000 / Math.max(img.naturalWidth, img.naturalHeight));
    const w = Math.max(1, Math.round(img.naturalWidth * scale)), h = Math.max(1, Math.round(img.naturalHeight * scale));
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0, w, h);
    let clear = 0;
    try {
        const data = ctx.getImageData(0, 0, w, h).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] < 255) clear++;
    } catch (e) {
        continue;  // an image from another origin cannot be read (the offline book has none)
    }
    const bg = behind(img);
    out.push([img.getAttribute("src"), Boolean(img.closest(".cell_output, figure")), clear / (w * h),
              bg ? luminance(bg) : null]);
}
return out;
"""


def check_readability(driver, rel: str) -> list[str]:
    """The page in the theme's light and dark modes: no transparent figure, no image showing a dark background
    through it, no text under CONTRAST_MIN against what is behind it. Leaves the page in light mode."""
    problems = []
    for mode in ("light", "dark"):
        if driver.execute_script(SET_MODE, mode) != mode:
            problems.append(f"{rel}: could not switch the page to {mode} mode")
            continue
        for src, figure, clear, bg in driver.execute_script(COLOURS + IMAGE_ALPHA):
            src = src if len(src) < 100 else src[:97] + "..."  # a data: URI is the whole image
            if figure and clear > 0 and mode == "light":  # the pixels are the same in both modes: report once
                problems.append(
                    f"{rel}: a figure with transparent pixels ({clear:.1%} of it), which shows whatever is behind it"
                    f" (the dark mode's background, Jupyter's or Colab's): save it opaque: {src}"
                )
            if clear > 0 and mode == "dark" and bg is not None and bg < DARK_BACKGROUND:
                problems.append(f"{rel}: in dark mode an image is transparent over the dark background: {src}")
        low = driver.execute_script(COLOURS + TEXT_CONTRAST, CONTRAST_MIN)
        for ratio, text, fg, bg, element in sorted(low)[:5]:
            problems.append(
                f"{rel}: in {mode} mode, text at contrast {ratio:.2f}:1 (under {CONTRAST_MIN:g}:1): {text!r} "
                f"in {fg} on {bg} ({element})"
            )
        if len(low) > 5:
            problems.append(f"{rel}: in {mode} mode, {len(low) - 5} more text element(s) under {CONTRAST_MIN:g}:1")
    driver.execute_script(SET_MODE, "light")
    return problems
