/** The sign-in form. */
import { esc, layout } from '../pages.ts';

export function loginPage(csrf: string, next: string, error: string | null): string {
  return layout(
    'Sign in',
    null,
    '',
    `${error ? `<p class="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/audit/login" class="signin">
<input type="hidden" name="_csrf" value="${esc(csrf)}"><input type="hidden" name="next" value="${esc(next)}">
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form>`,
  );
}
