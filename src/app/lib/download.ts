// Hands a file from the worker to the person: a Blob URL on a temporary link, revoked afterwards.
export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.append(a);
  a.click();
  a.remove();
  // The download has started by the next task; revoking later than that is safe everywhere.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
