/** Hands a Blob made in the page to the browser as a file download. */
export function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  link.click();
  // Long enough for the browser to have started reading it.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
