// The before/after view: both images on one stage at the output's pixel size (a x4 input is
// stretched by the browser to match), a divider that shows "before" left of it and "after" right
// of it, zoom (fit, 100 %, wheel) and pan (drag). A press that does not move is a click on the
// photo: the viewer reports it in photo pixels to whoever listens (the colour hints).

const CLICK_SLOP = 4; // pointer travel in CSS pixels below which a press is a click, not a pan
const MIN_ZOOM = 0.02;
const MAX_ZOOM = 32;

export class Viewer extends EventTarget {
  constructor(el) {
    super();
    this.el = el;
    this.stage = el.querySelector("#stage");
    this.before = el.querySelector("#before");
    this.after = el.querySelector("#after");
    this.divider = el.querySelector("#divider");
    this.split = document.querySelector("#split");
    this.zoomLabel = document.querySelector("#zoom");
    this.photo = null; // {width, height} of the uploaded photo in its own pixels
    this.size = null; // {width, height} of the stage: the output's size once there is one
    this.zoom = 1;
    this.panX = 0;
    this.panY = 0;
    this.split.addEventListener("input", () => this.render());
    el.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    el.addEventListener("pointerdown", (e) => this.onPointerDown(e));
    new ResizeObserver(() => this.render()).observe(el);
  }

  /** Show a new photo and forget any result. False when the browser cannot display it (a TIFF, or not
   * an image at all): the server may still take it, and its answer is shown alone. */
  async setPhoto(url) {
    this.photo = null;
    this.size = null;
    this.el.classList.add("has-photo");
    try {
      const { width, height } = await load(this.before, url);
      this.photo = { width, height };
    } catch {
      this.before.removeAttribute("src");
    }
    this.before.hidden = !this.photo;
    this.clearResult();
    this.fit();
    return this.photo !== null;
  }

  /** Show a result over the photo; the stage takes the result's size. */
  async setResult(url) {
    this.after.hidden = false;
    const { width, height } = await load(this.after, url);
    const resized = !this.size || this.size.width !== width || this.size.height !== height;
    this.setSize(width, height);
    this.showComparison(this.photo !== null);
    if (resized) this.fit();
    else this.render();
  }

  clearResult() {
    this.after.hidden = true;
    this.after.removeAttribute("src");
    this.showComparison(false);
    if (this.photo) this.setSize(this.photo.width, this.photo.height);
  }

  showComparison(on) {
    this.split.disabled = !on;
    this.divider.hidden = !on;
    document.querySelector("#tag-before").hidden = !on;
    document.querySelector("#tag-after").hidden = !on;
  }

  setSize(width, height) {
    this.size = { width, height };
    for (const img of [this.before, this.after]) {
      img.style.width = `${width}px`;
      img.style.height = `${height}px`;
    }
  }

  /** The whole image in the view. */
  fit() {
    if (!this.size) return;
    const { width, height } = this.el.getBoundingClientRect();
    this.zoom = Math.min(width / this.size.width, height / this.size.height);
    this.panX = (width - this.size.width * this.zoom) / 2;
    this.panY = (height - this.size.height * this.zoom) / 2;
    this.render();
  }

  /** One image pixel per screen pixel, keeping the view's centre where it is. */
  actualSize() {
    const { width, height } = this.el.getBoundingClientRect();
    this.zoomAt(1 / window.devicePixelRatio, width / 2, height / 2);
  }

  zoomAt(zoom, x, y) {
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom));
    this.panX = x - ((x - this.panX) * next) / this.zoom;
    this.panY = y - ((y - this.panY) * next) / this.zoom;
    this.zoom = next;
    this.render();
  }

  render() {
    if (!this.size) return;
    this.stage.style.transform = `translate(${this.panX}px, ${this.panY}px) scale(${this.zoom})`;
    const viewWidth = this.el.clientWidth;
    const line = (Number(this.split.value) / 100) * viewWidth;
    const cut = this.photo ? Math.min(this.size.width, Math.max(0, (line - this.panX) / this.zoom)) : 0;
    this.after.style.clipPath = `inset(0 0 0 ${cut}px)`;
    this.divider.style.left = `${line}px`;
    this.zoomLabel.textContent = `${Math.round(this.zoom * window.devicePixelRatio * 100)} %`;
    this.dispatchEvent(new Event("render"));
  }

  /** Photo pixel (integers) under a viewer point, or null outside the photo. */
  toPhoto(x, y) {
    const sx = this.size.width / this.photo.width;
    const sy = this.size.height / this.photo.height;
    const px = Math.floor((x - this.panX) / this.zoom / sx);
    const py = Math.floor((y - this.panY) / this.zoom / sy);
    if (px < 0 || py < 0 || px >= this.photo.width || py >= this.photo.height) return null;
    return { x: px, y: py };
  }

  /** Viewer point at the centre of a photo pixel. */
  fromPhoto(x, y) {
    const sx = this.size.width / this.photo.width;
    const sy = this.size.height / this.photo.height;
    return { x: this.panX + (x + 0.5) * sx * this.zoom, y: this.panY + (y + 0.5) * sy * this.zoom };
  }

  local(e) {
    const rect = this.el.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  onWheel(e) {
    if (!this.size) return;
    e.preventDefault();
    const { x, y } = this.local(e);
    this.zoomAt(this.zoom * Math.exp(-e.deltaY / 500), x, y);
  }

  onPointerDown(e) {
    if (!this.size || e.button !== 0 || e.target.closest(".dot")) return;
    e.preventDefault(); // no native image drag
    const start = this.local(e);
    const pan = { x: this.panX, y: this.panY };
    let moved = false;
    this.el.setPointerCapture(e.pointerId);
    const move = (m) => {
      const p = this.local(m);
      moved ||= Math.hypot(p.x - start.x, p.y - start.y) > CLICK_SLOP;
      if (!moved) return;
      this.el.classList.add("panning");
      this.panX = pan.x + p.x - start.x;
      this.panY = pan.y + p.y - start.y;
      this.render();
    };
    const up = () => {
      this.el.removeEventListener("pointermove", move);
      this.el.removeEventListener("pointerup", up);
      this.el.removeEventListener("pointercancel", up);
      this.el.classList.remove("panning");
      const pixel = moved || !this.photo ? null : this.toPhoto(start.x, start.y);
      if (pixel) this.dispatchEvent(new CustomEvent("photoclick", { detail: pixel }));
    };
    this.el.addEventListener("pointermove", move);
    this.el.addEventListener("pointerup", up);
    this.el.addEventListener("pointercancel", up);
  }
}

/** Load ``url`` into ``img``; resolves with its natural size (EXIF orientation applied, as the server does). */
function load(img, url) {
  return new Promise((resolve, reject) => {
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => reject(new Error("the browser cannot display this image"));
    img.src = url;
  });
}
