import type { Socket } from 'node:net';

/**
 * The server name a TLS client asks for (SNI), read from the first record of its ClientHello
 * without decrypting anything. The proxy uses it when a CONNECT names an IP address: the address
 * says little, the name the browser is about to verify says which site it is.
 */

/** The largest TLS record (2^14) plus its header, and some room for records that exceed it. */
const MAX_HELLO = 16_384 + 2048 + 5;

export interface ClientHello {
  /** every byte read so far, to be sent on to the origin unchanged */
  data: Buffer;
  /** the first record looks like a TLS handshake */
  tls: boolean;
  /** the host_name in the server_name extension, lower case, or null */
  serverName: string | null;
}

/**
 * Parses the server_name extension out of a buffer holding (at least) the first TLS record.
 * Returns undefined while more bytes are needed, null when there is no name (or this is not TLS).
 */
export function serverNameOf(buf: Buffer): string | null | undefined {
  if (buf.length < 1) return undefined;
  if (buf[0] !== 0x16) return null; // not a handshake record
  if (buf.length < 5) return undefined;
  const recordLength = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLength) return undefined;
  const end = 5 + recordLength;
  let p = 5;
  if (buf[p] !== 0x01) return null; // not a ClientHello
  p += 4; // type, length (3)
  p += 2 + 32; // client version, random
  if (p >= end) return null;
  p += 1 + buf[p]!; // session id
  if (p + 2 > end) return null;
  p += 2 + buf.readUInt16BE(p); // cipher suites
  if (p >= end) return null;
  p += 1 + buf[p]!; // compression methods
  if (p + 2 > end) return null;
  const extensionsEnd = Math.min(end, p + 2 + buf.readUInt16BE(p));
  p += 2;
  while (p + 4 <= extensionsEnd) {
    const type = buf.readUInt16BE(p);
    const length = buf.readUInt16BE(p + 2);
    p += 4;
    if (p + length > extensionsEnd) return null;
    if (type === 0x0000) {
      // server_name_list: length (2), then entries of type (1), length (2), name
      let q = p + 2;
      const listEnd = Math.min(p + length, p + 2 + buf.readUInt16BE(p));
      while (q + 3 <= listEnd) {
        const nameType = buf[q]!;
        const nameLength = buf.readUInt16BE(q + 1);
        q += 3;
        if (q + nameLength > listEnd) return null;
        if (nameType === 0) {
          const name = buf.toString('latin1', q, q + nameLength).toLowerCase();
          return /^[a-z0-9._-]+$/.test(name) && name.length <= 253 ? name : null;
        }
        q += nameLength;
      }
      return null;
    }
    p += length;
  }
  return null;
}

/**
 * Reads from a client socket (after "200 Connection Established") until the first TLS record is
 * complete, the data is plainly not TLS, or `timeoutMs` passes. The socket is left paused with
 * nothing consumed that is not in `data`.
 */
export function readClientHello(socket: Socket, head: Buffer, timeoutMs: number): Promise<ClientHello> {
  return new Promise((resolve) => {
    let data = head;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', finish);
      socket.off('close', finish);
      socket.pause();
      const name = serverNameOf(data);
      resolve({ data, tls: data.length > 0 && data[0] === 0x16, serverName: name ?? null });
    };
    const check = () => {
      if (serverNameOf(data) !== undefined || data.length >= MAX_HELLO) finish();
    };
    const onData = (chunk: Buffer) => {
      data = data.length === 0 ? chunk : Buffer.concat([data, chunk]);
      check();
    };
    const timer = setTimeout(finish, timeoutMs);
    check();
    if (done) return;
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('close', finish);
    socket.resume();
  });
}

/** A TLS fatal alert, access_denied (49): what a client sees when its SNI is refused mid-tunnel. */
export const TLS_ACCESS_DENIED = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);
