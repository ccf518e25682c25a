// A scrolling list that keeps only the rows in view (and a screenful either side) in the page, so tens of thousands
// of hits scroll as smoothly as ten. Rows may have any height: each is measured once rendered, and rows not yet
// seen count as the estimate.

export class VirtualList {
  /**
   * @param {HTMLElement} viewport the scrolling element (its height comes from the layout)
   * @param {(item: any, index: number) => HTMLElement} renderRow
   * @param {(item: any) => string} keyOf a stable key per item
   */
  constructor(viewport, renderRow, keyOf, estimate = 30) {
    this.viewport = viewport;
    this.renderRow = renderRow;
    this.keyOf = keyOf;
    this.estimate = estimate;
    this.items = [];
    this.heights = new Map();
    this.rows = new Map();
    this.offsets = [0];
    this.dirty = true;
    this.onNearEnd = null;
    this.canvas = document.createElement('div');
    this.canvas.className = 'virtual-canvas';
    viewport.append(this.canvas);
    this.frame = 0;
    viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(viewport);
  }

  /** Replaces the items and scrolls back to the top. */
  setItems(items) {
    this.items = items;
    this.clearRows();
    this.dirty = true;
    this.viewport.scrollTop = 0;
    this.render();
  }

  /** Adds items after the last. */
  append(items) {
    this.items = this.items.concat(items);
    this.dirty = true;
    this.schedule();
  }

  /** Adds items before the first, keeping what the reader looks at in place unless they are at the top. */
  prepend(items, limit = Infinity) {
    if (items.length === 0) return;
    const atTop = this.viewport.scrollTop < 4;
    let added = 0;
    for (const item of items) added += this.heights.get(this.keyOf(item)) ?? this.estimate;
    this.items = items.concat(this.items);
    if (this.items.length > limit) {
      for (const item of this.items.slice(limit)) this.forget(item);
      this.items.length = limit;
    }
    this.dirty = true;
    if (!atTop) this.viewport.scrollTop += added;
    this.render();
  }

  /** Renders one item again (its content changed, say it was expanded) and measures it anew. */
  refresh(item) {
    const key = this.keyOf(item);
    const row = this.rows.get(key);
    if (row) {
      row.remove();
      this.rows.delete(key);
    }
    this.heights.delete(key);
    this.dirty = true;
    this.render();
  }

  /** Scrolls so the item at the index is in view. */
  scrollToIndex(index) {
    this.layout();
    this.viewport.scrollTop = this.offsets[index];
    this.render();
  }

  forget(item) {
    const key = this.keyOf(item);
    this.heights.delete(key);
    this.rows.get(key)?.remove();
    this.rows.delete(key);
  }

  clearRows() {
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
    this.heights.clear();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  layout() {
    if (!this.dirty) return;
    const offsets = new Array(this.items.length + 1);
    offsets[0] = 0;
    for (let i = 0; i < this.items.length; i++) {
      offsets[i + 1] = offsets[i] + (this.heights.get(this.keyOf(this.items[i])) ?? this.estimate);
    }
    this.offsets = offsets;
    this.canvas.style.height = `${offsets[this.items.length]}px`;
    this.dirty = false;
  }

  /** The first index whose row ends below the offset. */
  indexAt(offset) {
    let low = 0;
    let high = this.items.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.offsets[middle + 1] <= offset) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  render() {
    for (let pass = 0; pass < 3; pass++) {
      this.layout();
      const height = this.viewport.clientHeight || 600;
      const top = Math.max(0, this.viewport.scrollTop - height);
      const bottom = this.viewport.scrollTop + 2 * height;
      const first = this.indexAt(top);
      let last = first;
      while (last < this.items.length && this.offsets[last] < bottom) last++;
      const wanted = new Set();
      const ordered = [];
      let measured = false;
      for (let i = first; i < last; i++) {
        const item = this.items[i];
        const key = this.keyOf(item);
        wanted.add(key);
        let row = this.rows.get(key);
        if (!row) {
          row = this.renderRow(item, i);
          row.classList.add('virtual-row');
          this.rows.set(key, row);
          this.canvas.append(row);
        }
        ordered.push(row);
        row.style.transform = `translateY(${this.offsets[i]}px)`;
        if (!this.heights.has(key)) {
          this.heights.set(key, row.offsetHeight || this.estimate);
          measured = true;
        }
      }
      for (const [key, row] of this.rows) {
        if (!wanted.has(key)) {
          row.remove();
          this.rows.delete(key);
        }
      }
      // The page's order is the list's order, for the keyboard, screen readers and find in page.
      if (ordered.some((row, i) => this.canvas.children[i] !== row)) this.canvas.append(...ordered);
      if (last >= this.items.length - 20 && this.onNearEnd) this.onNearEnd();
      if (!measured) break;
      this.dirty = true;
    }
  }
}
