// A strict little XML well-formedness check for the SVGs we write (no XML parser ships with the project):
// balanced, properly nested tags, quoted attributes without raw `<` or `&`, text without raw `<` or stray `&`.
// Returns the elements in document order with their attributes.
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  parent: XmlElement | null;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;
const NAME = '[A-Za-z_][\\w.:-]*';
const ATTR = new RegExp(`\\s+(${NAME})="([^"<]*)"`, 'y');

function checkText(text: string, where: string): void {
  if (text.replace(ENTITY, '').includes('&')) throw new Error(`unescaped & in ${where}`);
}

export function parseXml(doc: string): XmlElement[] {
  const out: XmlElement[] = [];
  const stack: XmlElement[] = [];
  let i = 0;
  let rootSeen = false;
  while (i < doc.length) {
    const lt = doc.indexOf('<', i);
    const text = doc.slice(i, lt < 0 ? doc.length : lt);
    if (text.includes('>')) throw new Error(`stray > in text at ${i}`);
    checkText(text, `text at ${i}`);
    if (stack.length === 0 && text.trim() !== '') throw new Error(`text outside the root at ${i}`);
    if (lt < 0) break;
    const close = new RegExp(`</(${NAME})\\s*>`, 'y');
    close.lastIndex = lt;
    const m = close.exec(doc);
    if (m) {
      const top = stack.pop();
      if (!top || top.name !== m[1]) throw new Error(`</${m[1]}> closes <${top?.name ?? 'nothing'}>`);
      i = close.lastIndex;
      continue;
    }
    const open = new RegExp(`<(${NAME})`, 'y');
    open.lastIndex = lt;
    const o = open.exec(doc);
    if (!o) throw new Error(`bad markup at ${lt}`);
    if (stack.length === 0 && rootSeen) throw new Error('a second root element');
    rootSeen = true;
    let j = open.lastIndex;
    const attrs: Record<string, string> = {};
    for (;;) {
      ATTR.lastIndex = j;
      const a = ATTR.exec(doc);
      if (!a) break;
      if (a[1] in attrs) throw new Error(`duplicate attribute ${a[1]}`);
      checkText(a[2], `attribute ${a[1]}`);
      attrs[a[1]] = a[2];
      j = ATTR.lastIndex;
    }
    const rest = /\s*(\/?)>/y;
    rest.lastIndex = j;
    const r = rest.exec(doc);
    if (!r) throw new Error(`bad attribute syntax in <${o[1]}> at ${j}`);
    const el: XmlElement = { name: o[1], attrs, parent: stack[stack.length - 1] ?? null };
    out.push(el);
    if (!r[1]) stack.push(el);
    i = rest.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!rootSeen) throw new Error('no root element');
  return out;
}
