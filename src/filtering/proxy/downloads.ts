/**
 * AS-08: programs and installers, recognised by the URL's file extension before the request goes
 * out and by the origin's Content-Type and Content-Disposition when the answer comes back (a
 * download link often has no extension: /download?id=7).
 */

/** File extensions of programs, installers, scripts and packages a pupil's device could run. */
export const EXECUTABLE_EXTENSIONS = [
  'exe', 'msi', 'msix', 'msixbundle', 'msp', 'appx', 'appxbundle', 'appinstaller', 'com', 'scr', 'pif', 'cpl',
  'bat', 'cmd', 'ps1', 'psm1', 'vbs', 'vbe', 'js', 'jse', 'wsf', 'wsh', 'hta', 'reg', 'lnk', 'application',
  'jar', 'dmg', 'pkg', 'mpkg', 'app', 'apk', 'aab', 'xapk', 'ipa', 'deb', 'rpm', 'snap', 'flatpakref', 'appimage',
  'run', 'bin', 'sh', 'crx', 'xpi',
] as const;

// `.js` is also every web page's script: only refused when the origin says it is a download.
const BY_PATH_ONLY_IF_ATTACHMENT = new Set(['js', 'com', 'bin', 'sh', 'app', 'run', 'lnk']);
const byPath = new Set<string>(EXECUTABLE_EXTENSIONS.filter((e) => !BY_PATH_ONLY_IF_ATTACHMENT.has(e)));
const byFilename = new Set<string>(EXECUTABLE_EXTENSIONS);

/** Content types origins use for programs and installers. */
export const EXECUTABLE_TYPES = new Set([
  'application/x-msdownload',
  'application/x-msdos-program',
  'application/x-ms-installer',
  'application/x-msi',
  'application/x-ms-application',
  'application/x-ms-shortcut',
  'application/x-dosexec',
  'application/x-executable',
  'application/x-sharedlib',
  'application/x-elf',
  'application/vnd.microsoft.portable-executable',
  'application/x-apple-diskimage',
  'application/x-newton-compatible-pkg',
  'application/vnd.apple.installer+xml',
  'application/vnd.android.package-archive',
  'application/x-debian-package',
  'application/vnd.debian.binary-package',
  'application/x-rpm',
  'application/x-redhat-package-manager',
  'application/java-archive',
  'application/x-java-archive',
  'application/x-java-jnlp-file',
  'application/x-bat',
  'application/x-sh',
  'application/x-csh',
  'application/x-ms-dos-executable',
  'application/appx',
  'application/msix',
  'application/vnd.ms-appx',
  'application/x-chrome-extension',
  'application/x-xpinstall',
  'application/x-iso9660-appimage',
  'application/x-appimage',
  'application/vnd.snap',
]);

function extensionOf(name: string): string | null {
  const dot = name.lastIndexOf('.');
  if (dot === -1 || dot === name.length - 1) return null;
  const slash = name.lastIndexOf('/');
  if (dot < slash) return null;
  return name.slice(dot + 1).toLowerCase();
}

/** The last path segment's extension, ignoring the query (and a trailing slash). */
export function pathExtension(path: string): string | null {
  let end = path.length;
  const q = path.indexOf('?');
  if (q !== -1) end = q;
  const h = path.indexOf('#');
  if (h !== -1 && h < end) end = h;
  let p = path.slice(0, end);
  if (p.endsWith('/')) p = p.slice(0, -1);
  try {
    p = decodeURIComponent(p);
  } catch {
    // keep it encoded
  }
  return extensionOf(p);
}

/** Before the request goes out: does the URL name a program or installer? */
export function isExecutablePath(path: string): boolean {
  // Fast exit: most paths have no dot after their last slash.
  const ext = pathExtension(path);
  return ext !== null && byPath.has(ext);
}

/** The filename a Content-Disposition header gives (filename*= first, then filename=). */
export function dispositionFilename(value: string): string | null {
  const star = /filename\*\s*=\s*(?:[\w!#$%&+^`{}~-]*)'[^']*'([^;]+)/i.exec(value);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      return star[1]!.trim();
    }
  }
  const plain = /filename\s*=\s*("((?:[^"\\]|\\.)*)"|[^;]+)/i.exec(value);
  if (!plain) return null;
  return (plain[2] ?? plain[1]!).replace(/\\(.)/g, '$1').trim();
}

/** After the origin answers: do its headers say this is a program or installer? */
export function executableResponse(contentType: string | undefined, contentDisposition: string | undefined): string | null {
  if (contentType) {
    const semi = contentType.indexOf(';');
    const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (EXECUTABLE_TYPES.has(type)) return type;
  }
  if (contentDisposition) {
    const name = dispositionFilename(contentDisposition);
    const ext = name ? extensionOf(name) : null;
    if (ext && byFilename.has(ext)) return name;
  }
  return null;
}
