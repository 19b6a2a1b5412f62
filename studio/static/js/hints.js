// Colour hints for colorize: a click on the photo adds one (in the colour picker's colour), a drag
// moves it, a right-click or its list button removes it. Each hint is drawn as a dot over the photo
// and listed; the selected hint takes the picker's colour. toJSON() is the handler's `hints` field:
// [{"x": int, "y": int, "rgb": [r, g, b]}] in the photo's pixels.

export class Hints extends EventTarget {
  constructor(viewer) {
    super();
    this.viewer = viewer;
    this.items = []; // {x, y, rgb: [r, g, b]}
    this.selected = -1;
    this.enabled = false;
    this.max = Infinity;
    this.dots = document.querySelector("#dots");
    this.list = document.querySelector("#hint-list");
    this.picker = document.querySelector("#hint-colour");
    this.picker.addEventListener("input", () => this.recolourSelected());
    viewer.addEventListener("photoclick", (e) => this.enabled && this.add(e.detail.x, e.detail.y));
    viewer.addEventListener("render", () => this.drawDots());
  }

  setEnabled(on) {
    this.enabled = on;
    this.viewer.el.classList.toggle("hinting", on);
    this.draw();
  }

  clear() {
    this.items = [];
    this.selected = -1;
    this.draw();
  }

  add(x, y) {
    if (this.items.length >= this.max) {
      this.dispatchEvent(new CustomEvent("refused", { detail: `at most ${this.max} hints are accepted` }));
      return;
    }
    this.items.push({ x, y, rgb: hexToRgb(this.picker.value) });
    this.selected = this.items.length - 1;
    this.draw();
  }

  remove(index) {
    this.items.splice(index, 1);
    this.selected = Math.min(this.selected, this.items.length - 1);
    this.draw();
  }

  select(index) {
    this.selected = index;
    this.picker.value = rgbToHex(this.items[index].rgb);
    this.draw();
  }

  recolourSelected() {
    if (this.selected < 0) return;
    this.items[this.selected].rgb = hexToRgb(this.picker.value);
    this.draw();
  }

  toJSON() {
    return this.items.map(({ x, y, rgb }) => ({ x, y, rgb }));
  }

  draw() {
    this.drawDots();
    this.drawList();
  }

  drawDots() {
    this.dots.replaceChildren();
    if (!this.enabled || !this.viewer.photo) return;
    this.items.forEach((hint, index) => {
      const dot = document.createElement("span");
      dot.className = index === this.selected ? "dot selected" : "dot";
      dot.title = `hint ${index + 1}: (${hint.x}, ${hint.y}); drag to move, right-click to remove`;
      const { x, y } = this.viewer.fromPhoto(hint.x, hint.y);
      dot.style.left = `${x}px`;
      dot.style.top = `${y}px`;
      dot.style.background = rgbToHex(hint.rgb);
      dot.addEventListener("pointerdown", (e) => this.drag(e, index));
      dot.addEventListener("contextmenu", (e) => {
        e.preventDefault();
        this.remove(index);
      });
      this.dots.append(dot);
    });
  }

  drawList() {
    this.list.replaceChildren();
    this.items.forEach((hint, index) => {
      const item = document.createElement("li");
      item.className = index === this.selected ? "selected" : "";
      const pick = document.createElement("button");
      pick.type = "button";
      pick.className = "swatch";
      pick.style.background = rgbToHex(hint.rgb);
      pick.title = "select (the colour picker then changes this hint)";
      pick.addEventListener("click", () => this.select(index));
      const where = document.createElement("span");
      where.textContent = `(${hint.x}, ${hint.y}) rgb ${hint.rgb.join(", ")}`;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "remove";
      remove.addEventListener("click", () => this.remove(index));
      item.append(pick, where, remove);
      this.list.append(item);
    });
  }

  drag(e, index) {
    if (e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    this.select(index);
    const el = this.viewer.el;
    el.setPointerCapture(e.pointerId);
    const move = (m) => {
      const rect = el.getBoundingClientRect();
      const pixel = this.viewer.toPhoto(m.clientX - rect.left, m.clientY - rect.top);
      if (!pixel) return;
      Object.assign(this.items[index], pixel);
      this.draw();
    };
    const up = () => {
      el.removeEventListener("pointermove", move);
      el.removeEventListener("pointerup", up);
    };
    el.addEventListener("pointermove", move);
    el.addEventListener("pointerup", up);
  }
}

function hexToRgb(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

function rgbToHex(rgb) {
  return `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}
