"""Measures of a page in a real browser that the console's and the portal's phone tests share: tap targets,
horizontal overflow, a header that stays on screen, what the first screen holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PHONE = {"width": 390, "height": 844}
MIN_TARGET = 44  # CSS px, both ways (WCAG 2.5.5, Apple's and Google's guidelines)

# Every visible link, button, field, select and fold (summary) with the box a finger hits: a check box or radio
# button inside a label is hit through its label. Hidden ones (no box, display none, inside a closed fold,
# visibility hidden, or moved off the page like a skip link until it has the focus) are left out.
_TARGETS = """(minimum) => {
  const out = [];
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, summary')) {
    // checkVisibility: false inside a closed fold too, whose content keeps its boxes but is not drawn.
    if (!el.checkVisibility({visibilityProperty: true})) continue;
    const label = ['checkbox', 'radio'].includes(el.type) ? el.closest('label') : null;
    const box = (label || el).getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.right + window.scrollX <= 0 || box.bottom + window.scrollY <= 0) continue;
    if (box.width < minimum - 0.5 || box.height < minimum - 0.5) {
      const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.name || '').trim().slice(0, 40);
      out.push(`${el.tagName.toLowerCase()} "${text}" ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  return out;
}"""


# Boxes that scroll sideways inside the page (a table wider than its panel): part of them is cut off on a phone.
_SIDEWAYS = """() => [...document.querySelectorAll('body *')]
  .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX) && el.checkVisibility()
                && el.scrollWidth > el.clientWidth + 1)
  .map(el => `${el.tagName.toLowerCase()}.${[...el.classList].join('.')} ${el.scrollWidth}>${el.clientWidth}`)"""


def sideways_scrollers(page: Any) -> list[str]:
    """Boxes inside the page that scroll sideways (so cut off what does not fit), as 'table.grid 388>350'."""
    return list(page.evaluate(_SIDEWAYS))


def small_targets(page: Any, minimum: int = MIN_TARGET) -> list[str]:
    """Each visible tap target smaller than ``minimum`` CSS px in either direction, as 'a "← Queue" 61x18'."""
    return list(page.evaluate(_TARGETS, minimum))


def scroll_width(page: Any) -> int:
    """The document's width in CSS px: wider than the viewport means the page scrolls sideways."""
    return int(page.evaluate("() => document.scrollingElement.scrollWidth"))


def stays_on_screen(page: Any, selector: str) -> bool:
    """True when ``selector`` is sticky (or fixed) and still at the top after scrolling to the end of the page."""
    return bool(
        page.evaluate(
            """async (selector) => {
              const el = document.querySelector(selector);
              if (!el || !['sticky', 'fixed'].includes(getComputedStyle(el).position)) return false;
              window.scrollTo(0, document.scrollingElement.scrollHeight);
              await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));
              const top = el.getBoundingClientRect().top;
              const scrolled = window.scrollY > 0;
              window.scrollTo(0, 0);
              return Math.abs(top) < 1 && (scrolled || document.scrollingElement.scrollHeight <= window.innerHeight);
            }""",
            selector,
        )
    )


def box(page: Any, selector: str) -> dict[str, float]:
    """The first match's box in page coordinates (scrolled to the top): x, y, width, height."""
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return dict(found)


def in_first_screen(page: Any, selector: str) -> bool:
    """True when the first match is shown wholly within the first screen (the page scrolled to the top)."""
    page.evaluate("() => window.scrollTo(0, 0)")
    b = box(page, selector)
    size = page.viewport_size
    return (
        b["y"] >= 0 and b["y"] + b["height"] <= size["height"] and b["x"] >= 0 and b["x"] + b["width"] <= size["width"]
    )


def measure(page: Any, label: str, artifacts: Path) -> list[str]:
    """What is wrong with the page at a phone's width, as sentences (none: it passes); a screenshot."""
    page.screenshot(path=str(artifacts / f"phone-measure-{label}.png"), full_page=True)
    problems = [f"{label}: {target}" for target in small_targets(page)]
    problems += [f"{label}: {scroller} scrolls sideways" for scroller in sideways_scrollers(page)]
    width = scroll_width(page)
    if width > PHONE["width"]:
        problems.append(f"{label}: {width} px wide")
    if page.locator("header").count() and not stays_on_screen(page, "header"):
        problems.append(f"{label}: the header scrolls away")
    return problems
