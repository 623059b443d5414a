/** Open TCP ports in nmap's grepable output (`-oG -`), ascending. */
export function nmapOpenPorts(output: string): number[] {
  const ports = /Ports: (.*?)(\t|$)/m.exec(output)?.[1] ?? "";
  return ports
    .split(", ")
    .filter((entry) => entry.split("/")[1] === "open")
    .map((entry) => Number(entry.split("/")[0]))
    .sort((a, b) => a - b);
}
