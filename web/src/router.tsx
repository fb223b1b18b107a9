import { useEffect, useState, type AnchorHTMLAttributes } from 'react';

/** Four pages do not need a routing library: the path, pushState, and popstate. */
export function usePath(): string {
  const [path, setPath] = useState(window.location.pathname);
  useEffect(() => {
    const update = () => setPath(window.location.pathname);
    window.addEventListener('popstate', update);
    window.addEventListener('gatehouse:navigate', update);
    return () => {
      window.removeEventListener('popstate', update);
      window.removeEventListener('gatehouse:navigate', update);
    };
  }, []);
  return path;
}

export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  window.dispatchEvent(new Event('gatehouse:navigate'));
}

export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  return (
    <a
      {...props}
      onClick={(event) => {
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        navigate(props.href);
      }}
    />
  );
}
