// Form controls generated from an endpoint's options as its handler declares them (handlers/options.py,
// served by the studio at /api/endpoints): one control per option, by kind. Two options have a
// home of their own on the page: the answer's encoding (format, quality) sits by the Download
// button, and colour hints are clicked on the photo (hints.js) rather than typed.

const OUTPUT_OPTIONS = new Set(["format", "quality"]);
export const CLICKED_OPTION = "hints";

export class OptionsForm {
  constructor() {
    this.modelBox = document.querySelector("#options");
    this.outputBox = document.querySelector("#download-options");
    this.controls = new Map(); // option name -> {option, read(): string | File | null}
    this.remembered = new Map(); // option name -> last value, kept across endpoints
  }

  /** Replace the controls with those of ``options`` (a schema's option list). */
  build(options) {
    this.remember();
    this.controls.clear();
    this.modelBox.querySelectorAll(".field").forEach((el) => el.remove());
    this.outputBox.replaceChildren();
    for (const option of options) {
      if (option.name === CLICKED_OPTION) continue;
      const box = OUTPUT_OPTIONS.has(option.name) ? this.outputBox : this.modelBox;
      box.append(this.field(option));
    }
    this.modelBox.hidden = this.modelBox.querySelectorAll(".field").length === 0;
  }

  declares(name, options) {
    return options.some((o) => o.name === name);
  }

  /** Append every set option to ``form`` as the handler expects it. */
  fill(form) {
    for (const [name, { read }] of this.controls) {
      const value = read();
      if (value !== null && value !== "") form.append(name, value);
    }
  }

  value(name) {
    const control = this.controls.get(name);
    return control ? control.read() : null;
  }

  onChange(callback) {
    for (const box of [this.modelBox, this.outputBox]) box.addEventListener("change", callback);
  }

  remember() {
    for (const [name, { option, read }] of this.controls) {
      if (option.kind !== "file") this.remembered.set(name, read());
    }
  }

  field(option) {
    const label = document.createElement("label");
    label.className = "field";
    label.title = option.help;
    const name = document.createElement("span");
    name.textContent = option.name;
    const help = document.createElement("small");
    help.textContent = option.help;
    const { input, box, read } = this.control(option);
    input.name = option.name;
    input.id = `option-${option.name}`;
    label.append(name, box ?? input, help);
    this.controls.set(option.name, { option, read });
    return label;
  }

  control(option) {
    const previous = this.remembered.get(option.name);
    const initial = previous ?? option.default;
    switch (option.kind) {
      case "bool": {
        const input = element("input", { type: "checkbox" });
        input.checked = previous !== undefined ? previous === "true" : Boolean(option.default);
        return { input, read: () => String(input.checked) };
      }
      case "choice": {
        const input = element("select");
        for (const choice of option.choices) input.append(new Option(choice, choice));
        input.value = option.choices.includes(initial) ? initial : option.default;
        return { input, read: () => input.value };
      }
      case "float":
        if (option.minimum != null && option.maximum != null) return slider(option, initial);
      // falls through: an unbounded number
      case "int": {
        const input = element("input", { type: "number", min: option.minimum ?? "", max: option.maximum ?? "",
                                          step: option.kind === "int" ? 1 : "any" });
        input.value = initial ?? "";
        return { input, read: () => input.value };
      }
      case "file": {
        const input = element("input", { type: "file", accept: "image/*" });
        const clear = element("button", { type: "button", class: "clear" });
        clear.textContent = "remove";
        clear.addEventListener("click", () => {
          input.value = "";
          input.dispatchEvent(new Event("change", { bubbles: true }));
        });
        const box = element("span", { class: "file" });
        box.append(input, clear);
        return { input, box, read: () => input.files[0] ?? null };
      }
      default: { // json, and any kind added later: the raw text the handler parses
        const input = element("textarea", { rows: 2, spellcheck: "false" });
        input.value = initial ?? "";
        return { input, read: () => input.value.trim() };
      }
    }
  }
}

/** A bounded number as a range slider with its value shown beside it. */
function slider(option, initial) {
  const input = element("input", { type: "range", min: option.minimum, max: option.maximum,
                                    step: (option.maximum - option.minimum) / 100 });
  input.value = initial;
  const shown = element("output");
  const show = () => { shown.textContent = Number(input.value).toFixed(2); };
  input.addEventListener("input", show);
  show();
  const box = element("span", { class: "range" });
  box.append(input, shown);
  return { input, box, read: () => input.value };
}

function element(tag, attributes = {}) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) el.setAttribute(key, value);
  return el;
}
