<?xml version="1.0" encoding="utf-8"?>
<!-- How a browser shows an RSS 2.0 or Atom 1.0 feed of feedsvc: a readable page of its
     stories with a note on following it (publish/feeds.py names this style sheet in
     every RSS and Atom document; feed readers ignore it). XSLT 1.0: what browsers run. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="utf-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:variable name="language">
    <xsl:choose>
      <xsl:when test="/rss/channel/language"><xsl:value-of select="substring(/rss/channel/language, 1, 2)"/></xsl:when>
      <xsl:when test="/atom:feed/@xml:lang"><xsl:value-of select="substring(/atom:feed/@xml:lang, 1, 2)"/></xsl:when>
      <xsl:otherwise>vi</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>
  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="description" select="/rss/channel/description | /atom:feed/atom:subtitle"/>
  <xsl:variable name="site" select="/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href"/>
  <xsl:variable name="self" select="/rss/channel/atom:link[@rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href"/>

  <xsl:template match="/">
    <html lang="{$language}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/></title>
        <link rel="stylesheet" href="../static/style.css"/>
      </head>
      <body>
        <header class="masthead">
          <a class="brand" href="{$site}"><xsl:value-of select="$title"/></a>
        </header>
        <main>
          <section class="card feed-note" aria-labelledby="follow-title">
            <xsl:choose>
              <xsl:when test="$language = 'en'">
                <xsl:call-template name="note-en"><xsl:with-param name="heading" select="'follow-title'"/></xsl:call-template>
                <xsl:call-template name="note-vi"/>
              </xsl:when>
              <xsl:otherwise>
                <xsl:call-template name="note-vi"><xsl:with-param name="heading" select="'follow-title'"/></xsl:call-template>
                <xsl:call-template name="note-en"/>
              </xsl:otherwise>
            </xsl:choose>
            <p class="feed-address"><code><xsl:value-of select="$self"/></code></p>
          </section>
          <section class="intro">
            <h1><xsl:value-of select="$title"/></h1>
            <xsl:if test="$description != $title">
              <p><xsl:value-of select="$description"/></p>
            </xsl:if>
          </section>
          <ul class="story-list">
            <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
          </ul>
          <p><a href="{$site}">
            <xsl:choose>
              <xsl:when test="$language = 'en'">Back to the home page</xsl:when>
              <xsl:otherwise>Về trang chủ</xsl:otherwise>
            </xsl:choose>
          </a></p>
        </main>
      </body>
    </html>
  </xsl:template>

  <xsl:template name="note-vi">
    <xsl:param name="heading"/>
    <div lang="vi">
      <h2 id="{$heading}">Đây là một nguồn tin (RSS/Atom)</h2>
      <p>Để theo dõi, hãy sao chép địa chỉ của trang này vào trình đọc tin như Feedly,
        NetNewsWire, Thunderbird hoặc newsboat: tin mới sẽ tự đến với bạn.</p>
    </div>
  </xsl:template>

  <xsl:template name="note-en">
    <xsl:param name="heading"/>
    <div lang="en">
      <xsl:choose>
        <xsl:when test="$heading"><h2 id="{$heading}">This is a news feed (RSS/Atom)</h2></xsl:when>
        <xsl:otherwise><p class="note-title"><strong>This is a news feed (RSS/Atom)</strong></p></xsl:otherwise>
      </xsl:choose>
      <p>To follow it, copy the address of this page into a feed reader such as Feedly,
        NetNewsWire, Thunderbird or newsboat: new stories then come to you.</p>
    </div>
  </xsl:template>

  <xsl:template match="item">
    <li class="story-card">
      <div class="story-text">
        <h2 class="story-heading"><a class="story-link" href="{link}"><xsl:value-of select="title"/></a></h2>
        <p class="byline"><time><xsl:value-of select="substring(pubDate, 1, 22)"/></time></p>
        <xsl:if test="description">
          <p class="lede-line"><xsl:value-of select="substring(description, 1, 300)"/></p>
        </xsl:if>
      </div>
    </li>
  </xsl:template>

  <xsl:template match="atom:entry">
    <xsl:variable name="when" select="atom:published | atom:updated[not(../atom:published)]"/>
    <li class="story-card">
      <div class="story-text">
        <h2 class="story-heading"><a class="story-link" href="{atom:link[not(@rel) or @rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a></h2>
        <p class="byline"><time datetime="{$when}"><xsl:value-of select="concat(substring($when, 1, 10), ' ', substring($when, 12, 5), ' UTC')"/></time></p>
        <xsl:if test="atom:summary">
          <p class="lede-line"><xsl:value-of select="substring(atom:summary, 1, 300)"/></p>
        </xsl:if>
      </div>
    </li>
  </xsl:template>
</xsl:stylesheet>
