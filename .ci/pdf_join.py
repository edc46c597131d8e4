"""Joining the printed pages of the book into one PDF (.ci/print_pdf.py prints them): the pages of the table of
contents as :class:`Page`, their destinations made explicit (ids repeat from chapter to chapter), page numbers,
links between chapters kept inside the PDF, and the outline."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urldefrag

from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    Fit,
    FloatObject,
    NameObject,
    NullObject,
)


@dataclass
class Page:
    """One page of the table of contents, and what printing it gave."""

    rel: str  # its path in the build, e.g. book/gp_sequences.html
    part: str | None  # the caption of its part in _toc.yml
    title: str = ""
    sections: list[tuple[str, int, str]] = field(default_factory=list)  # (id, level, title), the title first
    pdf: PdfReader | None = None
    anchors: dict[str, tuple[int, float, float]] = field(default_factory=dict)  # id -> (page index, left, top)
    first: int = 0  # index of its first page in the joined PDF


def explicit_destinations(reader: PdfReader) -> dict[str, tuple[int, float, float]]:
    """Turn the page's named destinations into explicit ones, in its links too, and return them by id.

    Chromium names each destination after the element's id, and ids repeat from chapter to chapter (every chapter
    has its #exercises): joined, the names would clash, so no link of the joined PDF goes by name."""
    anchors, arrays = {}, {}
    for name, dest in reader.named_destinations.items():
        index = reader.get_destination_page_number(dest)
        anchors[name.lstrip("/")] = (index, float(dest.left or 0), float(dest.top or 0))
        arrays[name] = dest.dest_array
    for page in reader.pages:
        for annot in page.get("/Annots", None) or []:
            annot = annot.get_object()
            if isinstance(annot.get("/Dest"), str) and annot["/Dest"] in arrays:
                annot[NameObject("/Dest")] = ArrayObject(arrays[annot["/Dest"]])
    root = reader.trailer["/Root"]
    for key in ("/Dests", "/Names"):
        if key in root:
            del root[key]
    return anchors


def number_pages(writer: PdfWriter, first: int) -> None:
    """Write the page number under every page from `first` on (1, 2, ...) and label the pages alike for viewers."""
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
        }
    )
    font_ref = writer._add_object(font)
    for number, page in enumerate(writer.pages[first:], start=1):
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        text = str(number)
        x = (width - 0.556 * 9 * len(text)) / 2  # Helvetica's digits are 0.556 em wide
        stamp = PageObject.create_blank_page(width=width, height=height)
        stamp[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/GPTheoryNo"): font_ref})}
        )
        content = DecodedStreamObject()
        content.set_data(f"q 0.35 g BT /GPTheoryNo 9 Tf {x:.2f} 26 Td ({text}) Tj ET Q".encode())
        stamp.replace_contents(content)
        page.merge_page(stamp)
        page.compress_content_streams()  # merge_page leaves the page's content uncompressed
    if first:
        writer.set_page_label(0, first - 1, style="/r")
    writer.set_page_label(first, len(writer.pages) - 1, style="/D", start=1)


def link_inside(writer: PdfWriter, pages: list[Page], baseurl: str) -> int:
    """Make every link into a page of this PDF (at the published address ``baseurl``) an internal link; return how
    many."""
    by_rel = {p.rel: p for p in pages}
    n = 0
    for page in writer.pages:
        for annot in page.get("/Annots", None) or []:
            annot = annot.get_object()
            uri = str(annot.get("/A", {}).get("/URI", ""))
            if not uri.startswith(baseurl):
                continue
            url, anchor = urldefrag(uri.removeprefix(baseurl))
            target = by_rel.get(unquote(url))
            if target is None:
                continue
            index, left, top = target.anchors.get(anchor, (0, 0, 0)) if anchor else (0, 0, 0)
            dest_page = writer.pages[target.first + index].indirect_reference
            if anchor and anchor in target.anchors:
                dest = [dest_page, NameObject("/XYZ"), FloatObject(left), FloatObject(top), NullObject()]
            else:
                dest = [dest_page, NameObject("/Fit")]
            del annot["/A"]
            annot[NameObject("/Dest")] = ArrayObject(dest)
            n += 1
    return n


def outline(writer: PdfWriter, pages: list[Page], contents: int) -> None:
    """Bookmarks: the contents, then each part with its chapters, each chapter with its sections."""
    writer.add_outline_item(title="Contents", page_number=contents)
    part_item, part = None, None
    for page in pages:
        if page.part != part:
            part = page.part
            part_item = writer.add_outline_item(title=part, page_number=page.first, bold=True) if part else None
        parents = {1: writer.add_outline_item(title=page.title, page_number=page.first, parent=part_item)}
        for sid, level, title in page.sections[1:]:
            if sid not in page.anchors or level < 2:
                continue
            index, left, top = page.anchors[sid]
            parent = parents[max(k for k in parents if k < level)]
            parents[level] = writer.add_outline_item(
                title=title, page_number=page.first + index, parent=parent, fit=Fit.xyz(left, top), is_open=False
            )
            for deeper in [k for k in parents if k > level]:
                del parents[deeper]
    writer.page_mode = "/UseOutlines"
