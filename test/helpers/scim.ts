/** SCIM 2.0 message schemas and a user as Microsoft Entra ID's POST /Users sends it, for the SCIM tests. */
export const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const PATCH_OP = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const LIST = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

export function entraUser(userName: string, externalId: string, extra: Record<string, unknown> = {}) {
  return {
    schemas: [USER, ENTERPRISE],
    externalId,
    userName,
    active: true,
    emails: [{ primary: true, type: 'work', value: `${userName.toLowerCase()}@school.example` }],
    name: { formatted: 'Jane Bloggs', familyName: 'Bloggs', givenName: 'Jane' },
    ...extra,
  };
}

export const patch = (...Operations: Array<Record<string, unknown>>) => ({ schemas: [PATCH_OP], Operations });
