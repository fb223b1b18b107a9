import { describe, expect, it } from 'vitest';
import { hostFromInput } from '../../src/filtering/lists-service.js';
import { hostOf } from '../../web/src/pages/FilterShared.js';

/**
 * What counts as a site for the school's own lists (FI-04): the API (`hostFromInput`) refuses what
 * the console's form (`hostOf`) refuses, and both give the name the engine keys.
 */
const accepted: Record<string, string> = {
  'bbc.co.uk': 'bbc.co.uk',
  'https://www.bbc.co.uk/bitesize': 'www.bbc.co.uk',
  'WWW.Example.ORG.': 'www.example.org',
  '*.example.com': 'example.com',
  'example.com:8080/page?x=1#top': 'example.com',
  'ftp://files.example.net/': 'files.example.net',
  'münchen.de': 'xn--mnchen-3ya.de',
  'xn--mnchen-3ya.de': 'xn--mnchen-3ya.de',
  '_sip.example.com': '_sip.example.com',
  '10.1.20.5': '10.1.20.5',
  'http://10.1.20.5:8080/x': '10.1.20.5',
  '[2001:DB8:0::1]': '2001:db8::1',
  '2001:db8:0:0::1': '2001:db8::1',
  [`${'a'.repeat(63)}.com`]: `${'a'.repeat(63)}.com`,
};
const refused = [
  'not',
  'a',
  'localhost',
  'exa mple.com',
  'exa_mple!!',
  'http://',
  'example..com',
  '.example.com',
  '-start.example.com',
  'end-.example.com',
  `${'a'.repeat(64)}.com`,
  `${'abcdefghi.'.repeat(26)}com`,
  'user@example.com',
  'mailto:someone@example.com',
  '10.1',
  '1.2.3',
  '010.0.0.1',
  '0x0a.0.0.1',
  '999.1.1.1',
  'example.123',
  'xn--a.com',
  '',
];

describe('sites typed for the school’s lists', () => {
  it('FI-08 the API and the console accept the same sites and agree on the name kept (IDN as punycode, IPv6 in short form)', () => {
    for (const [typed, host] of Object.entries(accepted)) {
      expect(hostFromInput(typed), typed).toBe(host);
      expect(hostOf(typed), typed).toBe(host);
    }
  });

  it('FI-08 the API and the console refuse the same things: single words, bad labels, short IPv4 forms, e-mail addresses', () => {
    for (const typed of refused) {
      expect(hostFromInput(typed), typed).toBeNull();
      expect(hostOf(typed), typed).toBeNull();
    }
  });
});
